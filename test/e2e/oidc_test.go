package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/login"
)

// idToken logs a person in at the stack's OIDC issuer with the device grant.
func idToken(ctx context.Context, t *testing.T, user, password string) string {
	t.Helper()
	ca, err := os.ReadFile(env.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	tok, err := login.Device(ctx, client, env.Issuer().URL(), issuer.ClientID, &login.Credentials{Username: user, Password: password}, nil)
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
	return tok.IDToken
}

// proxyConfig reaches a cluster through the host's aggregator and our proxy with a token.
func proxyConfig(ns, cluster, token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(env.AdminConfig)
	cfg.Host = env.AdminConfig.Host + "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + ns + "/clusters/" + cluster + "/proxy"
	cfg.BearerToken = token
	return cfg
}

// directConfig reaches containerservice-apiserver itself (not through the host) with a token.
func directConfig(t *testing.T, token string) *rest.Config {
	t.Helper()
	cfg, err := env.DirectConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.AnonymousClientConfig(cfg)
	cfg.BearerToken = token
	return cfg
}

// auditEvent is what the tests read of a user cluster's audit log.
type auditEvent struct {
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string              `json:"username"`
		Extra    map[string][]string `json:"extra"`
	} `json:"impersonatedUser"`
	AuditID string `json:"auditID"`
}

// audited returns the user cluster's audit events whose request URI contains marker.
func auditedURI(t *testing.T, ns, cluster, marker string) []auditEvent {
	t.Helper()
	f, err := os.Open(filepath.Join(env.ClusterDir(ns, cluster), "logs", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditEvent
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		if !strings.Contains(scanner.Text(), marker) {
			continue
		}
		var ev auditEvent
		if json.Unmarshal(scanner.Bytes(), &ev) == nil && strings.Contains(ev.RequestURI, marker) {
			out = append(out, ev)
		}
	}
	return out
}

// fenceAudit makes a request as the cluster's administrator through the proxy and waits
// until the cluster's audit log holds it: every request sent before has been logged by
// then, so the absence of an attack's marker means it never reached the cluster.
func fenceAudit(ctx context.Context, t *testing.T, ns, cluster, token string) {
	t.Helper()
	marker := "fence-" + time.Now().Format("150405.000000000")
	client, err := rest.HTTPClientFor(proxyConfig(ns, cluster, token))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxyConfig(ns, cluster, token).Host+"/api/v1/namespaces/"+marker, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(ctx, t, "the fence request is audited", func() (bool, error) {
		return len(auditedURI(t, ns, cluster, marker)) > 0, nil
	})
}
