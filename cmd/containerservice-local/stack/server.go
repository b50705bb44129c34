package stack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"k8s.io/client-go/discovery"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner/supervisor"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
)

// StartServer starts containerservice-apiserver, registers it with the aggregator and
// returns once its API is discoverable through the host. extraArgs come last, so they
// override the stack's own flags (as a test breaking --kube-bin-dir needs).
func (s *Stack) StartServer(ctx context.Context, extraArgs ...string) error {
	// Never two servers: they would fight over the data directory.
	s.StopServer()
	port := s.ports["containerservice-apiserver"]
	if !portFree(port) {
		p, err := FreePort()
		if err != nil {
			return err
		}
		port, s.ports["containerservice-apiserver"] = p, p
	}
	s.progress("starting containerservice-apiserver on https://127.0.0.1:%d (embedded etcd under %s)", port, s.ServerDataDir())
	args := append([]string{
		"--secure-port=" + strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--tls-cert-file=" + s.serving.CertFile, "--tls-private-key-file=" + s.serving.KeyFile,
		"--kubeconfig=" + s.serverKubeconfig,
		"--authentication-kubeconfig=" + s.serverKubeconfig,
		"--authorization-kubeconfig=" + s.serverKubeconfig,
		"--data-dir=" + s.ServerDataDir(),
		"--kube-bin-dir=" + s.cfg.BinDir,
		"--public-url=https://127.0.0.1:" + strconv.Itoa(s.ports["host-apiserver"]),
		"--public-ca-file=" + s.ca.CertFile,
	}, s.cfg.ServerArgs...)
	if s.issuer != nil {
		args = append(args, "--authentication-config="+s.serverAuthnConfig(), "--oidc-issuer-url="+s.issuer.URL(),
			"--oidc-client-id="+issuer.ClientID, "--oidc-ca-file="+s.ca.CertFile)
	}
	if s.cfg.ServerOnHostEtcd {
		args = append(args, s.etcdClientFlags("containerservice-etcd-client")...)
	}
	args = append(args, extraArgs...)
	s.server = supervisor.Supervise(supervisor.Component{Name: "containerservice-apiserver", Binary: s.cfg.ServerBinary, Args: args, LogDir: s.logDir})
	if err := s.register(ctx, port); err != nil {
		return err
	}
	return s.WaitForServer(ctx)
}

// WaitForServer returns once the server's API is discoverable through the host's
// aggregator (after a start, or a restart by the supervisor).
func (s *Stack) WaitForServer(ctx context.Context) error {
	dc, err := discovery.NewDiscoveryClientForConfig(s.AdminConfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		list, err := dc.ServerResourcesForGroupVersion(v1alpha1.SchemeGroupVersion.String())
		if err == nil && len(list.APIResources) > 0 && s.ServerPid() != 0 {
			return nil
		}
		if err == nil {
			err = errors.New("no resources discovered yet")
		}
		select {
		case <-ctx.Done():
			tail, _ := os.ReadFile(s.ServerLog())
			if len(tail) > 4096 {
				tail = tail[len(tail)-4096:]
			}
			return fmt.Errorf("containerservice-apiserver not served through the aggregator: %w (last: %v); end of %s:\n%s", ctx.Err(), err, s.ServerLog(), tail)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// register points the aggregator at the server: an ExternalName Service naming loopback
// (the aggregator connects to <externalName>:<APIService port>) and the APIService with
// the CA of the server's serving certificate.
func (s *Stack) register(ctx context.Context, port int) error {
	caPEM, err := os.ReadFile(s.serve.CertFile)
	if err != nil {
		return err
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec: {type: ExternalName, externalName: localhost}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: %[3]s}
spec:
  group: %[4]s
  version: %[5]s
  groupPriorityMinimum: 1000
  versionPriority: 15
  service: {name: %[1]s, namespace: %[2]s, port: %[6]d}
  caBundle: %[7]s
`, ServerService, ServerNamespace, apiServiceName, v1alpha1.GroupName, v1alpha1.SchemeGroupVersion.Version, port,
		base64.StdEncoding.EncodeToString(caPEM))
	if _, err := s.Kubectl(ctx, []byte(manifest), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("register the APIService: %w", err)
	}
	return nil
}
