package proxy

import (
	"bufio"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
)

// backend is a stand-in for a user cluster's kube-apiserver: it records what arrives.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	handle   func(w http.ResponseWriter, r *http.Request)
}

func newBackend(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *backend {
	b := &backend{handle: handle}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests = append(b.requests, r.Clone(context.Background()))
		b.mu.Unlock()
		if b.handle != nil {
			b.handle(w, r)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	b.EnableHTTP2 = true
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) seen() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.requests...)
}

// access hands out a configuration for the backend, with a client certificate that is
// issued anew when asked (as after a rotation).
type access struct {
	b         *backend
	ca        *pki.Authority
	cert, key []byte
}

func newAccess(t *testing.T, b *backend) *access {
	ca, err := pki.CreateCA(t.TempDir(), "client-ca")
	if err != nil {
		t.Fatal(err)
	}
	a := &access{b: b, ca: ca}
	a.rotate(t)
	return a
}

func (a *access) rotate(t *testing.T) {
	var err error
	if a.cert, a.key, err = a.ca.Issue(pki.Request{CommonName: "ucs:proxy", Client: true}); err != nil {
		t.Fatal(err)
	}
}

func (a *access) RESTConfig(context.Context, *v1alpha1.Cluster, provisioner.Identity) (*rest.Config, error) {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.b.Certificate().Raw})
	return &rest.Config{Host: a.b.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca, CertData: a.cert, KeyData: a.key}}, nil
}

var admin = &user.DefaultInfo{Name: "alice@example.com", Groups: []string{"acme-admins"}}

func cluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme", UID: "u1"},
		Spec: v1alpha1.ClusterSpec{Administrators: []v1alpha1.Subject{{Kind: v1alpha1.SubjectKindUser, Name: admin.Name}}}}
}

// responder answers errors as the API server's responder does, with a status.
type responder struct{}

func (responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, err.Error(), http.StatusBadGateway)
}

// front serves the proxy for path, as the registry's Connect would.
func front(t *testing.T, p *Proxy, path string) *httptest.Server {
	t.Helper()
	target, decision := TargetFor(cluster(), nil, admin, "")
	if decision != Allowed {
		t.Fatal("the administrator has no target")
	}
	h, err := p.Handler(context.Background(), cluster(), target, path, responder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestTargetFor(t *testing.T) {
	c := cluster()
	c.Spec.Administrators = append(c.Spec.Administrators, v1alpha1.Subject{Kind: v1alpha1.SubjectKindGroup, Name: "ops"})
	if tgt, d := TargetFor(c, nil, admin, ""); d != Allowed || tgt.Impersonated() != "system:serviceaccount:ucs-users:"+tgt.ServiceAccount || tgt.Username != admin.Name || len(tgt.Groups) != 0 {
		t.Errorf("administrator: %+v %v", tgt, d)
	}
	if tgt, d := TargetFor(c, nil, &user.DefaultInfo{Name: "bob@example.com", Groups: []string{"ops", "dev"}}, ""); d != Allowed || !slices.Equal(tgt.Groups, []string{"ops"}) {
		t.Errorf("member of an administrator group: %+v %v, want allowed with the group ops only", tgt, d)
	}
	for _, u := range []user.Info{
		&user.DefaultInfo{Name: "Alice@example.com"}, // names are exact
		&user.DefaultInfo{Name: "system:admin", Groups: []string{"system:masters", "ops"}},
		&user.DefaultInfo{Name: ""},
		&user.DefaultInfo{Name: "mallory@example.com", Groups: []string{"system:masters"}},
	} {
		if tgt, d := TargetFor(c, nil, u, ""); d != Forbidden {
			t.Errorf("%q got an identity: %+v %v", u.GetName(), tgt, d)
		}
	}
}

func TestProjectMembers(t *testing.T) {
	c := cluster()
	members := NewMembers()
	h := members.Handler()
	p := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "acme", UID: "p1", Generation: 1},
		Spec: v1alpha1.ProjectSpec{Clusters: []string{"prod"}, Members: []v1alpha1.ProjectMember{
			{Kind: v1alpha1.SubjectKindUser, Name: "carol@example.com", Role: v1alpha1.ProjectRoleEdit},
			{Kind: v1alpha1.SubjectKindGroup, Name: "payments", Role: v1alpha1.ProjectRoleView},
			{Kind: v1alpha1.SubjectKindGroup, Name: "system:authenticated", Role: v1alpha1.ProjectRoleView},
		}}}
	other := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "acme", UID: "p2", Generation: 1},
		Spec:   v1alpha1.ProjectSpec{Clusters: []string{"dev"}, Members: []v1alpha1.ProjectMember{{Kind: v1alpha1.SubjectKindUser, Name: "dave@example.com", Role: v1alpha1.ProjectRoleAdmin}}},
		Status: v1alpha1.ProjectStatus{Clusters: []v1alpha1.ProjectClusterStatus{{Name: "dev", Phase: v1alpha1.ProjectReady, ObservedGeneration: 1}}}}
	h.OnAdd(p, false)
	h.OnAdd(other, false)
	carol := &user.DefaultInfo{Name: "carol@example.com"}
	erin := &user.DefaultInfo{Name: "erin@example.com", Groups: []string{"payments", "system:authenticated"}}
	dave := &user.DefaultInfo{Name: "dave@example.com"}
	expect := func(u user.Info, want Decision, groups ...string) {
		t.Helper()
		tgt, d := TargetFor(c, members, u, "")
		if d != want || (d == Allowed && !slices.Equal(tgt.Groups, groups)) {
			t.Errorf("%s: %v %+v, want %v with groups %v", u.GetName(), d, tgt.Groups, want, groups)
		}
	}
	// Not converged yet: members wait, others are refused.
	expect(carol, NotReady)
	expect(erin, NotReady)
	expect(dave, Forbidden) // a member of a project placed in another cluster

	converged := p.DeepCopy()
	converged.Status.Clusters = []v1alpha1.ProjectClusterStatus{{Name: "prod", Phase: v1alpha1.ProjectReady, ObservedGeneration: 1}}
	h.OnUpdate(p, converged)
	expect(carol, Allowed)
	expect(erin, Allowed, "payments") // never system:authenticated, though a project names it

	// dave is added: he waits for the bindings, carol keeps her access meanwhile.
	added := converged.DeepCopy()
	added.Generation = 2
	added.Spec.Members = append(added.Spec.Members, v1alpha1.ProjectMember{Kind: v1alpha1.SubjectKindUser, Name: "dave@example.com", Role: v1alpha1.ProjectRoleView})
	h.OnUpdate(converged, added)
	expect(dave, NotReady)
	expect(carol, Allowed)
	// erin joins another project of the cluster: in its namespace she waits, elsewhere
	// her access goes on.
	web := &v1alpha1.Project{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "acme", UID: "p3", Generation: 1},
		Spec: v1alpha1.ProjectSpec{Namespace: "web", Clusters: []string{"prod"}, Members: []v1alpha1.ProjectMember{{Kind: v1alpha1.SubjectKindUser, Name: "erin@example.com", Role: v1alpha1.ProjectRoleEdit}}}}
	h.OnAdd(web, false)
	if _, d := TargetFor(c, members, erin, "web"); d != NotReady {
		t.Errorf("erin in the namespace of a project not in place yet: %v, want NotReady", d)
	}
	if _, d := TargetFor(c, members, erin, "payments"); d != Allowed {
		t.Errorf("erin elsewhere: %v, want Allowed", d)
	}
	h.OnDelete(web)

	// carol is removed: out at once, before the controller removed her binding.
	removed := added.DeepCopy()
	removed.Generation = 3
	removed.Spec.Members = removed.Spec.Members[1:]
	h.OnUpdate(added, removed)
	expect(carol, Forbidden)

	// A project being deleted grants nothing; a deleted one neither.
	deleting := removed.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	h.OnUpdate(removed, deleting)
	expect(erin, Forbidden)
	h.OnDelete(deleting)
	expect(erin, Forbidden)
}

// TestNothingTheCallerSendsSpeaksForThem sends every header through which a caller
// could claim another identity or leak a credential, in odd letter cases, duplicated and
// named in Connection: the cluster receives only the proxy's own impersonation, of the
// caller's ServiceAccount, with their username as an extra.
func TestNothingTheCallerSendsSpeaksForThem(t *testing.T) {
	b := newBackend(t, nil)
	p := New(newAccess(t, b))
	s := front(t, p, "/api/v1/namespaces")

	req, _ := http.NewRequest(http.MethodGet, s.URL+"/clusters/prod/proxy/api/v1/namespaces?limit=5&watch=0", nil)
	attack := map[string][]string{
		"Impersonate-User":         {"system:admin"},
		"impersonate-group":        {"system:masters", "system:masters"},
		"IMPERSONATE-UID":          {"0"},
		"Impersonate-Extra-Scopes": {"all"},
		"X-Remote-User":            {"system:admin"},
		"x-remote-group":           {"system:masters"},
		"X-Remote-Extra-Foo":       {"bar"},
		"Authorization":            {"Bearer the-callers-token"},
		"proxy-authorization":      {"Basic c2VjcmV0"},
		"Cookie":                   {"console-session=the-callers-session"},
		"Connection":               {"Impersonate-User, X-Forwarded-For, Authorization"},
		"Sec-WebSocket-Protocol":   {"base64url.bearer.authorization.k8s.io.dG9rZW4, v5.channel.k8s.io"},
	}
	for k, vs := range attack {
		req.Header[k] = vs // raw keys: not canonicalized
	}
	before := req.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := b.seen()
	if len(got) != 1 {
		t.Fatalf("%d requests reached the cluster", len(got))
	}
	h := got[0].Header
	tgt, _ := TargetFor(cluster(), nil, admin, "")
	want := "system:serviceaccount:ucs-users:" + tgt.ServiceAccount
	if v := h.Values("Impersonate-User"); len(v) != 1 || v[0] != want {
		t.Errorf("Impersonate-User %v, want exactly %s", v, want)
	}
	for k, v := range h {
		lk := strings.ToLower(k)
		switch {
		case lk == "impersonate-user":
		case strings.HasPrefix(lk, "impersonate-extra-"):
			if !strings.Contains(lk, "username") || len(v) != 1 || v[0] != admin.Name {
				t.Errorf("extra %s=%v reached the cluster", k, v)
			}
		case strings.HasPrefix(lk, "impersonate-"), strings.HasPrefix(lk, "x-remote-"), lk == "authorization", lk == "proxy-authorization", lk == "cookie":
			t.Errorf("%s=%v reached the cluster", k, v)
		case lk == "sec-websocket-protocol":
			if strings.Contains(strings.Join(v, ","), "bearer") {
				t.Errorf("a bearer token in %s reached the cluster: %v", k, v)
			}
		}
	}
	if got[0].URL.Path != "/api/v1/namespaces" || got[0].URL.RawQuery != "limit=5&watch=0" {
		t.Errorf("forwarded to %s?%s", got[0].URL.Path, got[0].URL.RawQuery)
	}
	for k, v := range before {
		if fmt.Sprint(req.Header[k]) != fmt.Sprint(v) {
			t.Errorf("the inbound request's %s was changed", k)
		}
	}
}

// TestAnEmptyPathIsTheRoot and TestRedirectsAreNotFollowed.
func TestAnEmptyPathIsTheRoot(t *testing.T) {
	b := newBackend(t, nil)
	s := front(t, New(newAccess(t, b)), "")
	resp, err := http.Get(s.URL + "/clusters/prod/proxy")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := b.seen(); len(got) != 1 || got[0].URL.Path != "/" {
		t.Errorf("an empty path reached %v", got)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := newBackend(t, nil)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/secrets", http.StatusFound)
	})
	s := front(t, New(newAccess(t, b)), "/api")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 || resp.Header.Get("Location") != "" {
		t.Errorf("a redirect from the cluster came through: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(elsewhere.seen()) != 0 {
		t.Error("the proxy followed the redirect")
	}
}

// TestAFailedUpgradeIsNoTunnel is CVE-2018-1002105: the cluster answers an upgrade with
// an error; the connection must close, so that a second request written behind the
// first on the same connection never reaches the cluster as the proxy's identity.
func TestAFailedUpgradeIsNoTunnel(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such pod", http.StatusNotFound)
	})
	s := front(t, New(newAccess(t, b)), "/api/v1/namespaces/default/pods/nope/exec")
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := s.Listener.Addr().String()
	fmt.Fprintf(conn, "GET /?command=sh HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n", host)
	fmt.Fprintf(conn, "GET /api/v1/secrets HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("upgrade answered %d %s", resp.StatusCode, body)
	}
	rest, err := io.ReadAll(conn)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("the connection stayed open after a failed upgrade: %v", err)
	}
	if len(rest) != 0 {
		t.Errorf("a second response came on the same connection: %q", rest)
	}
	for _, r := range b.seen() {
		if strings.Contains(r.URL.Path, "secrets") {
			t.Errorf("the pipelined request reached the cluster: %s", r.URL.Path)
		}
	}
}

// TestARotationMakesNewConnections: a new proxy credential means new transports.
func TestARotationMakesNewConnections(t *testing.T) {
	b := newBackend(t, nil)
	a := newAccess(t, b)
	p := New(a)
	first, err := p.transports.get(context.Background(), cluster())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.transports.get(context.Background(), cluster())
	if again != first {
		t.Error("the same credential made a second transport")
	}
	a.rotate(t)
	rotated, _ := p.transports.get(context.Background(), cluster())
	if rotated == first {
		t.Error("a rotated credential kept the old transport")
	}
	if rotated.h1.TLSClientConfig.NextProtos[0] != "http/1.1" {
		t.Errorf("upgrades would not use HTTP/1.1: %v", rotated.h1.TLSClientConfig.NextProtos)
	}
}

func TestLongRunning(t *testing.T) {
	for _, c := range []struct {
		method, path, query string
		want                bool
	}{
		{"GET", "/api/v1/namespaces/default/pods", "", false},
		{"GET", "/api/v1/namespaces/default/pods", "watch=true", true},
		{"GET", "/api/v1/watch/namespaces/default/pods", "", true},
		{"GET", "/api/v1/namespaces/default/pods/app/log", "follow=true", true},
		{"POST", "/api/v1/namespaces/default/pods/app/exec", "command=sh", true},
		{"GET", "/api/v1/namespaces/default/pods/app/portforward", "", true},
		{"GET", "/api/v1/namespaces/default/services/web/proxy/", "", true},
		{"GET", "/apis/apps/v1/namespaces/default/deployments/web", "", false},
		{"GET", "/", "", false},
	} {
		r := &http.Request{Method: c.method, URL: &url.URL{RawQuery: c.query}, Header: http.Header{}}
		if got := LongRunning(r, c.path); got != c.want {
			t.Errorf("%s %s?%s: long-running %v, want %v", c.method, c.path, c.query, got, c.want)
		}
	}
}

// TestAWatchIsStreamed checks that each event of a watch reaches the caller as the
// cluster sends it, not when the response ends: ordinary responses go out in full
// buffers, long-running ones must not.
func TestAWatchIsStreamed(t *testing.T) {
	next := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 2 {
			fmt.Fprintf(w, "event %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	s := front(t, New(newAccess(t, b)), "/api/v1/pods")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.URL + "/clusters/prod/proxy/api/v1/pods?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	for i := range 2 {
		line, err := lines.ReadString('\n')
		if err != nil || line != fmt.Sprintf("event %d\n", i) {
			t.Fatalf("event %d: got %q, %v", i, line, err)
		}
		next <- struct{}{} // the cluster sends the next event only once this one arrived
	}
}

func TestInnerNamespace(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/web/pods":                  "web",
		"/apis/apps/v1/namespaces/web/deployments/api": "web",
		"/api/v1/namespaces/web":                       "web",
		"/api/v1/nodes":                                "",
		"/api/v1/watch/namespaces/web/pods":            "web",
		"/":                                            "",
	} {
		if got := InnerNamespace(path); got != want {
			t.Errorf("%s: namespace %q, want %q", path, got, want)
		}
	}
}
