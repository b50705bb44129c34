package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/component-base/metrics/testutil"

	"github.com/ucloudstack/containerservice/pkg/provisioner/pki"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/issuer"
	"github.com/ucloudstack/containerservice/pkg/proxy/authn/login"
)

// fixture is a real issuer (the local stack's) and our authenticator trusting it.
type fixture struct {
	is     *issuer.Issuer
	caPEM  []byte
	client *http.Client
	auth   authenticator.Request
}

func startIssuer(t *testing.T, l net.Listener) (*issuer.Issuer, []byte) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.CreateCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueFiles(dir, "issuer", pki.Request{CommonName: "issuer", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	users := &issuer.Users{Users: []issuer.User{
		{Name: "alice@example.com", Password: "alice", Groups: []string{"acme-admins"}},
		{Name: "system:admin", Password: "root"},
		{Name: "mallory@example.com", Password: "m", Groups: []string{"system:masters"}},
	}}
	is, err := issuer.Start(issuer.Config{Users: users, Listener: l, URL: "https://" + l.Addr().String(), Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.Stop)
	return is, ca.CertPEM()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	is, caPEM := startIssuer(t, l)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	f := &fixture{is: is, caPEM: caPEM, client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	f.auth = f.authenticator(t, is.URL())
	return f
}

func (f *fixture) authenticator(t *testing.T, url string) authenticator.Request {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, []Issuer{{URL: url, Audiences: []string{"containerservice", "other"}, CA: f.caPEM,
		UsernameClaim: "sub", UsernamePrefix: "", GroupsClaim: "groups", GroupsPrefix: "oidc:"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) login(t *testing.T, user, password string) string {
	t.Helper()
	tok, err := login.Device(context.Background(), f.client, f.is.URL(), issuer.ClientID, &login.Credentials{Username: user, Password: password}, nil)
	if err != nil {
		t.Fatalf("log in as %s: %v", user, err)
	}
	return tok.IDToken
}

// authenticate sends the token as a direct request would; it waits for the issuer's
// discovery (done in the background) to have happened.
func (f *fixture) authenticate(t *testing.T, a authenticator.Request, token string) (*authenticator.Response, bool, error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "https://server/apis", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, ok, err := a.AuthenticateRequest(req)
		if err == nil || !strings.Contains(err.Error(), "not been reached yet") || time.Now().After(deadline) {
			if ok && req.Header.Get("Authorization") != "" {
				t.Error("the token was left on an authenticated request")
			}
			return resp, ok, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPersonLogsIn(t *testing.T) {
	f := newFixture(t)
	resp, ok, err := f.authenticate(t, f.auth, f.login(t, "alice@example.com", "alice"))
	if err != nil || !ok {
		t.Fatalf("alice's token: %v %v", ok, err)
	}
	if u := resp.User; u.GetName() != "alice@example.com" || strings.Join(u.GetGroups(), ",") != "oidc:acme-admins,system:authenticated" {
		t.Errorf("alice is %q in %v", u.GetName(), u.GetGroups())
	}
	// Tokens of no configured issuer, and requests without one, are left to the next
	// authenticator (TokenReview of the host's tokens).
	for _, token := range []string{"", "not-a-jwt", f.sign(t, map[string]any{"iss": "https://elsewhere.example.com", "sub": "x", "aud": "containerservice", "exp": future()})} {
		if _, ok, err := f.authenticate(t, f.auth, token); ok || err != nil {
			t.Errorf("token %.20q: %v %v, want to be left alone", token, ok, err)
		}
	}
}

func future() int64 { return time.Now().Add(time.Hour).Unix() }

func (f *fixture) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := f.is.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestForgedAndWrongTokensAreRefused tries what an attacker holding the issuer's public
// keys, or a token meant for something else, would try.
func TestForgedAndWrongTokensAreRefused(t *testing.T) {
	f := newFixture(t)
	valid := map[string]any{"iss": f.is.URL(), "sub": "alice@example.com", "aud": "containerservice", "exp": future(), "iat": time.Now().Unix()}
	with := func(changes map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range valid {
			c[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	// The baseline is accepted, so that each refusal below is for its own reason.
	if _, ok, err := f.authenticate(t, f.auth, f.sign(t, valid)); !ok || err != nil {
		t.Fatalf("a valid signed token: %v %v", ok, err)
	}
	keys := f.jwks(t)
	tests := map[string]string{
		"expired":                     f.sign(t, with(map[string]any{"exp": time.Now().Add(-2 * time.Minute).Unix()})),
		"not valid yet":               f.sign(t, with(map[string]any{"nbf": time.Now().Add(10 * time.Minute).Unix()})),
		"for another audience":        f.sign(t, with(map[string]any{"aud": "kubernetes"})),
		"without a username":          f.sign(t, with(map[string]any{"sub": nil})),
		"a system: username":          f.sign(t, with(map[string]any{"sub": "system:admin"})),
		"a system: group":             f.sign(t, with(map[string]any{"groups": []string{"ok", "system:masters"}})),
		"alg none":                    unsigned(t, "none", "", with(nil), nil),
		"HS256 keyed with the public": unsigned(t, "HS256", f.is.SigningKeyID(), with(nil), keys),
		"an unknown key id":           resigned(t, f.sign(t, with(nil)), "made-up-kid"),
		"a tampered payload":          tamper(t, f.sign(t, with(nil))),
	}
	for name, token := range tests {
		if resp, ok, err := f.authenticate(t, f.auth, token); ok || err == nil {
			t.Errorf("%s: authenticated as %v", name, resp)
		}
	}
	// A token of an issuer not configured is not this authenticator's: not authenticated,
	// and no error, so that the union asks the next authenticator (TokenReview), as
	// kube-apiserver's JWT authenticator does.
	if resp, ok, _ := f.authenticate(t, f.auth, f.sign(t, with(map[string]any{"iss": "https://issuer.example"}))); ok {
		t.Errorf("a token from another issuer: authenticated as %v", resp)
	}
	// Logged in for real, with a system: name or group: still refused.
	for _, u := range [][2]string{{"system:admin", "root"}, {"mallory@example.com", "m"}} {
		if _, ok, err := f.authenticate(t, f.auth, f.login(t, u[0], u[1])); ok || err == nil {
			t.Errorf("%s logged in and was authenticated", u[0])
		}
	}
}

// TestAFloodOfUnknownKeyIDsCostsTheIssuerLittle: made-up key ids make the keys be
// fetched again at most once every unknownKeyRefetch, not once per token.
func TestAFloodOfUnknownKeyIDsCostsTheIssuerLittle(t *testing.T) {
	f := newFixture(t)
	token := f.sign(t, map[string]any{"iss": f.is.URL(), "sub": "alice@example.com", "aud": "containerservice", "exp": future()})
	if _, ok, err := f.authenticate(t, f.auth, token); !ok || err != nil {
		t.Fatal(err)
	}
	before, _ := testutil.GetCounterMetricValue(fetches.WithLabelValues(f.is.URL(), "ok"))
	for i := range 50 {
		_, _, _ = f.authenticate(t, f.auth, resigned(t, token, "kid-"+string(rune('a'+i%26))+time.Now().String()))
	}
	after, _ := testutil.GetCounterMetricValue(fetches.WithLabelValues(f.is.URL(), "ok"))
	if after-before > 1 {
		t.Errorf("50 unknown key ids fetched the keys %v times, want at most once", after-before)
	}
	if n, _ := testutil.GetCounterMetricValue(fetches.WithLabelValues(f.is.URL(), "throttled")); n < 49 {
		t.Errorf("throttled %v, want 49", n)
	}
}

// TestKeyRotation: tokens signed before and after the issuer rotates its key verify.
func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	before := f.login(t, "alice@example.com", "alice")
	if _, ok, err := f.authenticate(t, f.auth, before); !ok || err != nil {
		t.Fatal(err)
	}
	for range 2 { // twice: the second signing key was never published before
		if err := f.is.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	after := f.login(t, "alice@example.com", "alice")
	if keyID(after) == keyID(before) {
		t.Fatal("the issuer did not rotate")
	}
	for name, token := range map[string]string{"before": before, "after": after} {
		if _, ok, err := f.authenticate(t, f.auth, token); !ok || err != nil {
			t.Errorf("a token signed %s the rotation: %v %v", name, ok, err)
		}
	}
}

// TestAnIssuerDownAtStart is retried until it answers.
func TestAnIssuerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f := &fixture{}
	dir := t.TempDir()
	ca, _ := pki.CreateCA(dir, "ca")
	f.caPEM = ca.CertPEM()
	a := f.authenticator(t, "https://"+addr)
	token := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://`+addr+`","exp":`+jsonInt(future())+`}`)) + ".c2ln"
	req, _ := http.NewRequest(http.MethodGet, "https://server/apis", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if _, ok, err := a.AuthenticateRequest(req); ok || err == nil || !strings.Contains(err.Error(), "not been reached yet") {
		t.Errorf("a token of an unreachable issuer: %v %v", ok, err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// jwks returns the issuer's published keys as JSON, what an attacker can read.
func (f *fixture) jwks(t *testing.T) []byte {
	t.Helper()
	resp, err := f.client.Get(f.is.URL() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("keys: %v", err)
	}
	return set.Keys[0]
}

// unsigned builds a token with the given algorithm: none (no signature), or HS256 keyed
// with the public key's JSON (the classic key-confusion attack).
func unsigned(t *testing.T, alg, kid string, claims map[string]any, key []byte) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	if alg == "none" {
		return signing + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// resigned swaps a signed token's key id (the signature then matches no published key).
func resigned(t *testing.T, token, kid string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid})
	return base64.RawURLEncoding.EncodeToString(h) + "." + parts[1] + "." + parts[2]
}

// tamper changes the username inside a signed token.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	changed := strings.Replace(string(payload), "alice@example.com", "admin@example.com", 1)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(changed)) + "." + parts[2]
}

func TestLoadConfig(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "authn.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer: {url: "https://issuer.example.com", audiences: [containerservice]}
  claimMappings:
    username: {claim: email, prefix: ""}
    groups: {claim: groups, prefix: "oidc:"}
  claimValidationRules:
  - {claim: hd, requiredValue: example.com}
`
	issuers, err := LoadConfig(write(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(issuers) != 1 || issuers[0].UsernameClaim != "email" || issuers[0].GroupsPrefix != "oidc:" || issuers[0].Required["hd"] != "example.com" {
		t.Errorf("loaded %+v", issuers)
	}
	for name, c := range map[string]struct{ body, field string }{
		"CEL username":  {strings.Replace(good, "username: {claim: email, prefix: \"\"}", "username: {expression: 'claims.email'}", 1), "jwt[0].claimMappings.username.expression"},
		"user rules":    {good + "  userValidationRules:\n  - {expression: 'true', message: x}\n", "jwt[0].userValidationRules"},
		"http issuer":   {strings.Replace(good, "https://issuer", "http://issuer", 1), "jwt[0].issuer.url"},
		"unknown field": {strings.Replace(good, "audiences:", "audiencez:", 1), "audiencez"},
	} {
		if _, err := LoadConfig(write(c.body)); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.field)
		}
	}
}

// TestEmailMustBeVerified: with the email as the username, a token whose email_verified
// is false, or not a boolean at all (some providers send the string "false"), is refused.
func TestEmailMustBeVerified(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, []Issuer{{URL: f.is.URL(), Audiences: []string{"containerservice"}, CA: f.caPEM, UsernameClaim: "email"}})
	if err != nil {
		t.Fatal(err)
	}
	token := func(verified any) string {
		claims := map[string]any{"iss": f.is.URL(), "sub": "u1", "email": "victim@example.com", "aud": "containerservice", "exp": future(), "iat": time.Now().Unix()}
		if verified != nil {
			claims["email_verified"] = verified
		}
		return f.sign(t, claims)
	}
	if _, ok, err := f.authenticate(t, a, token(true)); !ok || err != nil {
		t.Fatalf("a verified email: %v %v", ok, err)
	}
	for _, v := range []any{false, "false", "true", 1} {
		if resp, ok, _ := f.authenticate(t, a, token(v)); ok {
			t.Errorf("email_verified %#v: authenticated as %v", v, resp)
		}
	}
}
