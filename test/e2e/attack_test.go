package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// arena is what the attack tests share: a tenant with two clusters, "target"
// (administered by alice) and "other" (by bob), alice and bob tenant members, and eve a
// tenant admin elsewhere.
type arena struct {
	ns, evesNS           string
	alice, bob, eve      string // ID tokens
	targetSA             string
	directURL, proxyPath string
}

var (
	arenaOnce sync.Once
	theArena  *arena
)

func setUpArena(t *testing.T) *arena {
	t.Helper()
	arenaOnce.Do(func() {
		ctx := testContext(t, 5*time.Minute)
		a := &arena{ns: env.NewTenant(t), evesNS: env.NewTenant(t)}
		for _, u := range []string{"alice", "bob"} {
			kubectlOrFail(ctx, t, "create", "rolebinding", u, "-n", a.ns, "--clusterrole=containerservice:tenant-member", "--user="+u+"@example.com")
		}
		kubectlOrFail(ctx, t, "create", "rolebinding", "eve", "-n", a.evesNS, "--clusterrole=containerservice:tenant-admin", "--user=eve@example.com")
		for name, admin := range map[string]string{"target": "alice@example.com", "other": "bob@example.com"} {
			c := newCluster(name, a.ns)
			c.Spec.Administrators = []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: admin}}
			if _, err := env.CS.ContainerserviceV1alpha1().Clusters(a.ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"target", "other"} {
			waitCondition(ctx, t, a.ns, name, "Ready", metav1.ConditionTrue)
		}
		a.alice, a.bob, a.eve = idToken(ctx, t, "alice@example.com", "alice"), idToken(ctx, t, "bob@example.com", "bob"), idToken(ctx, t, "eve@example.com", "eve")
		a.targetSA = v1alpha1.ServiceAccountUsername("alice@example.com")
		a.proxyPath = "/apis/containerservice.ucloudstack.io/v1alpha1/namespaces/" + a.ns + "/clusters/target/proxy"
		a.directURL = env.ServerURL()
		theArena = a
	})
	if theArena == nil {
		t.Fatal("the attack arena could not be set up")
	}
	return theArena
}

// send makes a request to base+path with the token and extra headers (raw keys, sent as
// given), and returns the status.
func send(t *testing.T, cfg *rest.Config, method, path string, header map[string][]string) int {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, cfg.Host+path, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// hostWith is the host's URL with a bearer token; directWith our server's.
func (a *arena) hostWith(token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(env.AdminConfig)
	cfg.BearerToken = token
	return cfg
}

// nothingReached checks, after fencing the audit log, that no request with marker
// reached the target cluster.
func (a *arena) nothingReached(t *testing.T, marker string) {
	t.Helper()
	fenceAudit(testContext(t, time.Minute), t, a.ns, "target", a.alice)
	if got := auditedURI(t, a.ns, "target", marker); len(got) > 0 {
		t.Errorf("the attack reached the cluster: %+v", got)
	}
}

func marker(t *testing.T) string {
	return "m-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + fmt.Sprint(time.Now().UnixNano()%1e6)
}

// TestProxyActsAsTheCallersServiceAccount is the baseline the attacks are measured
// against: through the host, alice reaches her cluster as her ServiceAccount, impersonated
// by the proxy identity, with her username as an extra and the request's audit ID.
func TestProxyActsAsTheCallersServiceAccount(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	client, err := rest.HTTPClientFor(a.hostWith(a.alice))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(env.AdminConfig.Host + a.proxyPath + "/api/v1/namespaces/" + m)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound { // the cluster answered: no such namespace
		t.Fatalf("status %d", resp.StatusCode)
	}
	var events []auditEvent
	eventually(testContext(t, time.Minute), t, "the request is audited", func() (bool, error) {
		events = auditedURI(t, a.ns, "target", m)
		return len(events) > 0, nil
	})
	ev := events[0]
	if ev.User.Username != "ucs:proxy" || ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != a.targetSA ||
		strings.Join(ev.ImpersonatedUser.Extra["containerservice.ucloudstack.io/username"], ",") != "alice@example.com" {
		t.Errorf("audited as %+v, impersonating %+v", ev.User, ev.ImpersonatedUser)
	}
	if id := resp.Header.Get("Audit-ID"); id == "" || ev.AuditID != id {
		t.Errorf("audit ID %q in the cluster, %q in the response", ev.AuditID, id)
	}
}

// TestAttackImpersonationHeaders: a caller's Impersonate-* headers, in any letter case,
// duplicated, to the host and to our server directly, are refused.
func TestAttackImpersonationHeaders(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	headers := []map[string][]string{
		{"Impersonate-User": {"system:admin"}},
		{"impersonate-user": {"system:admin"}, "Impersonate-Group": {"system:masters", "system:masters"}},
		{"IMPERSONATE-USER": {a.targetSA}, "impersonate-uid": {"0"}},
		{"Impersonate-User": {"bob@example.com"}, "Impersonate-Extra-Scopes": {"all"}},
		{"Impersonate-Group": {"system:masters"}},
	}
	for i, h := range headers {
		for _, cfg := range []*rest.Config{a.hostWith(a.alice), directConfig(t, a.alice)} {
			// 403: alice may not impersonate; 400: groups without a user are malformed.
			if code := send(t, cfg, http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, h); code != http.StatusForbidden && code != http.StatusBadRequest {
				t.Errorf("headers %d to %s: %d, want 403 or 400", i, cfg.Host, code)
			}
		}
	}
	a.nothingReached(t, m)
}

// TestAttackConnectionHeader (CVE-2021-31999): a Connection header naming the proxy's
// own identity headers must not strip them: the request reaches the cluster as alice's
// ServiceAccount, never as the proxy identity itself.
func TestAttackConnectionHeader(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	h := map[string][]string{"Connection": {"Impersonate-User, Impersonate-Extra-Containerservice.ucloudstack.io%2fusername, Authorization"}}
	for _, cfg := range []*rest.Config{a.hostWith(a.alice), directConfig(t, a.alice)} {
		cfg.TLSClientConfig.NextProtos = []string{"http/1.1"} // HTTP/2 has no Connection header
		if code := send(t, cfg, http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, h); code != http.StatusNotFound {
			t.Errorf("via %s: %d, want the cluster's 404", cfg.Host, code)
		}
	}
	fenceAudit(testContext(t, time.Minute), t, a.ns, "target", a.alice)
	events := auditedURI(t, a.ns, "target", m)
	if len(events) == 0 {
		t.Fatal("the requests were not audited")
	}
	for _, ev := range events {
		if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != a.targetSA {
			t.Errorf("a request ran as %s impersonating %+v", ev.User.Username, ev.ImpersonatedUser)
		}
	}
}

// TestAttackRemoteUserHeaders: X-Remote-* are trusted only from the aggregator's
// front-proxy certificate: alone they are anonymous; beside a token, ignored.
func TestAttackRemoteUserHeaders(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	remote := map[string][]string{"X-Remote-User": {"alice@example.com"}, "X-Remote-Group": {"system:masters"}}
	anonymous := directConfig(t, "")
	if code := send(t, anonymous, http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, remote); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("X-Remote-User without the front-proxy certificate: %d, want 401 or 403", code)
	}
	a.nothingReached(t, m)

	// Beside eve's token: eve stays eve, who may not use alice's tenant.
	if code := send(t, directConfig(t, a.eve), http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, remote); code != http.StatusForbidden {
		t.Errorf("eve's token with X-Remote-User alice: %d, want 403", code)
	}
	a.nothingReached(t, m)
}

// TestAttackOtherTenantsCluster: a tenant admin elsewhere cannot reach this tenant's
// cluster, through the host or directly.
func TestAttackOtherTenantsCluster(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	for _, cfg := range []*rest.Config{a.hostWith(a.eve), directConfig(t, a.eve)} {
		if code := send(t, cfg, http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, nil); code != http.StatusForbidden {
			t.Errorf("eve on alice's tenant's cluster via %s: %d, want 403", cfg.Host, code)
		}
	}
	a.nothingReached(t, m)
}

// TestAttackAdministratorOfAnotherCluster: bob administers "other", not "target", in the
// same tenant, and may use the proxy: he still has no identity in "target".
func TestAttackAdministratorOfAnotherCluster(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	if code := send(t, a.hostWith(a.bob), http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, nil); code != http.StatusForbidden {
		t.Errorf("bob on a cluster he does not administer: %d, want 403", code)
	}
	otherPath := strings.Replace(a.proxyPath, "/clusters/target/", "/clusters/other/", 1)
	if code := send(t, a.hostWith(a.bob), http.MethodGet, otherPath+"/api/v1/namespaces/default", nil); code != http.StatusOK {
		t.Errorf("bob on his own cluster: %d, want 200", code)
	}
	a.nothingReached(t, m)
}

// TestAttackForgedTokens: tokens the issuer did not hand out are refused by the host and
// by our server.
func TestAttackForgedTokens(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	expired, err := env.Issuer().Sign(map[string]any{"iss": env.Issuer().URL(), "sub": "alice@example.com", "aud": "containerservice",
		"exp": time.Now().Add(-5 * time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(a.alice, ".")
	forged := map[string]string{
		"expired":    expired,
		"alg none":   "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"tampered":   parts[0] + "." + parts[1][:len(parts[1])-4] + "AAAA." + parts[2],
		"not a JWT":  "alice",
		"no payload": parts[0] + "..",
	}
	for name, token := range forged {
		for _, cfg := range []*rest.Config{a.hostWith(token), directConfig(t, token)} {
			if code := send(t, cfg, http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, nil); code != http.StatusUnauthorized {
				t.Errorf("%s token via %s: %d, want 401", name, cfg.Host, code)
			}
		}
	}
	a.nothingReached(t, m)
}

// TestAttackNestedImpersonation: kubectl --as through the proxy is refused (alice may not
// impersonate on the platform, and nothing of it passes into the cluster).
func TestAttackNestedImpersonation(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	for _, as := range [][]string{{"--as=system:admin"}, {"--as=" + a.targetSA}, {"--as=alice@example.com", "--as-group=system:masters"}} {
		args := append([]string{"--server=" + env.AdminConfig.Host + a.proxyPath, "--certificate-authority=" + env.CAFile(), "--token=" + a.alice}, as...)
		_, err := env.KubectlAs(testContext(t, time.Minute), "/dev/null", nil, append(args, "get", "namespace", m)...)
		if err == nil || !strings.Contains(err.Error(), "Forbidden") && !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("kubectl %s through the proxy: %v, want forbidden", as, err)
		}
	}
	a.nothingReached(t, m)
}

// TestAttackFailedUpgradeTunnel (CVE-2018-1002105): an upgrade the cluster refuses
// closes the connection, so a request pipelined behind it never reaches the cluster with
// the proxy's credentials.
func TestAttackFailedUpgradeTunnel(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	u, _ := url.Parse(a.directURL)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // the server's identity is not what is tested
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s/api/v1/namespaces/default/pods/nope/exec?command=sh&stdout=1 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n", a.proxyPath, u.Host, a.alice)
	fmt.Fprintf(conn, "GET /api/v1/namespaces/%s HTTP/1.1\r\nHost: %s\r\n\r\n", m, u.Host)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Fatal("exec on a missing pod was upgraded")
	}
	if rest, _ := io.ReadAll(reader); len(rest) > 0 {
		t.Errorf("a second response came on the connection: %.200q", rest)
	}
	a.nothingReached(t, m)
}

// TestAttackWebSocketToken: a bearer token in Sec-WebSocket-Protocol does not authenticate
// a request to our server by itself.
func TestAttackWebSocketToken(t *testing.T) {
	a := setUpArena(t)
	m := marker(t)
	h := map[string][]string{"Sec-WebSocket-Protocol": {"base64url.bearer.authorization.k8s.io." + strings.TrimRight(a.alice, "="), "v5.channel.k8s.io"}}
	if code := send(t, directConfig(t, ""), http.MethodGet, a.proxyPath+"/api/v1/namespaces/"+m, h); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("a token in Sec-WebSocket-Protocol alone: %d, want 401 or 403", code)
	}
	a.nothingReached(t, m)

}
