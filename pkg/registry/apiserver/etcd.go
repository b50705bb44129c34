package apiserver

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"
)

// etcdStartTimeout bounds how long the embedded etcd may take to become ready, e.g. while
// it replays a large write-ahead log.
const etcdStartTimeout = 2 * time.Minute

// embeddedEtcd is the single-member etcd the server runs in-process when no
// --etcd-servers are given.
type embeddedEtcd struct {
	etcd *embed.Etcd
	// clientURL is where the storage layer reaches it.
	clientURL string
}

// startEmbeddedEtcd starts etcd on dataDir. Clients reach it over a unix socket in dataDir
// and it listens on no TCP port, so only processes that can enter dataDir (0700, the
// server's own user) can read or write the stored objects.
func startEmbeddedEtcd(dataDir string) (*embeddedEtcd, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data directory %s: %w", dataDir, err)
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	sock := filepath.Join(dataDir, "etcd.sock")
	// A socket left by a server that was killed would make the listener fail.
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove stale etcd socket: %w", err)
	}
	client := url.URL{Scheme: "unix", Path: sock}
	// A single member never talks to peers; its peer URL only names it in the cluster map,
	// so nothing listens on it.
	peer := url.URL{Scheme: "http", Host: "localhost:2380"}

	cfg := embed.NewConfig()
	cfg.Name = "containerservice"
	cfg.Dir = filepath.Join(dataDir, "etcd")
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = nil
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "warn"
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s failed: %w", cfg.Dir, err)
	case <-time.After(etcdStartTimeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready after %s", cfg.Dir, etcdStartTimeout)
	}
	klog.InfoS("Embedded etcd ready", "dir", cfg.Dir, "client", client.String())
	return &embeddedEtcd{etcd: e, clientURL: client.String()}, nil
}

// Close stops etcd after it has finished what it was doing.
func (e *embeddedEtcd) Close() { e.etcd.Close() }
