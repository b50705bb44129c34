package stack

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// loadPorts reuses the ports of an earlier start when they are still free, so kubeconfigs
// and the etcd member's URLs stay valid, and picks free ones otherwise.
func (s *Stack) loadPorts() error {
	file := filepath.Join(s.cfg.StateDir, "ports.json")
	s.ports = map[string]int{}
	if data, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(data, &s.ports)
	}
	for _, name := range []string{"host-etcd-client", "host-etcd-peer", "host-apiserver", "containerservice-apiserver", "oidc-issuer"} {
		if p, ok := s.ports[name]; ok && portFree(p) {
			continue
		}
		p, err := FreePort()
		if err != nil {
			return fmt.Errorf("find a free port for %s: %w", name, err)
		}
		s.ports[name] = p
	}
	data, _ := json.Marshal(s.ports)
	return os.WriteFile(file, data, 0o600)
}

// FreePort is a loopback TCP port that nothing listens on at the moment of the call, for
// the stack's components and for tests that start a listener of their own.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
