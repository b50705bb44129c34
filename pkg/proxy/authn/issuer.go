package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// Signing algorithms accepted: asymmetric only. "none" and HMAC (which a verifier holding
// only public keys could be tricked into checking with a public key) never are.
var signingAlgorithms = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512}

const (
	// clockSkew is how far the issuer's clock may be ahead (not-before) or behind (expiry).
	clockSkew = 30 * time.Second
	// discoveryRetry is how often discovery is tried again while the issuer is down.
	discoveryRetry = 10 * time.Second
)

// issuerAuthenticator verifies the tokens of one issuer.
type issuerAuthenticator struct {
	cfg    Issuer
	client *http.Client
	// verifier is nil until discovery succeeded.
	verifier atomic.Pointer[oidc.IDTokenVerifier]
}

// newIssuerAuthenticator starts discovering the issuer in the background, retrying until
// it answers or ctx ends; until then its tokens are refused as "not reachable yet".
func newIssuerAuthenticator(ctx context.Context, cfg Issuer) (*issuerAuthenticator, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CA) {
			return nil, fmt.Errorf("the certificate authority of %s holds no PEM certificate", cfg.URL)
		}
		tlsConfig.RootCAs = pool
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, Proxy: http.ProxyFromEnvironment},
		// Discovery and keys come from where the issuer says, never from a redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	a := &issuerAuthenticator{cfg: cfg, client: client}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		if a.verifier.Load() != nil {
			return
		}
		if err := a.discover(ctx); err != nil {
			klog.ErrorS(err, "OIDC issuer not reachable yet; retrying", "issuer", cfg.URL, "every", discoveryRetry)
		}
	}, discoveryRetry)
	return a, nil
}

func (a *issuerAuthenticator) discover(ctx context.Context) error {
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), a.cfg.URL)
	if err != nil {
		return err
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKS == "" {
		return fmt.Errorf("discovery of %s names no jwks_uri: %v", a.cfg.URL, err)
	}
	keys := newKeySet(a.cfg.URL, meta.JWKS, a.client)
	v := oidc.NewVerifier(a.cfg.URL, keys, &oidc.Config{
		SkipClientIDCheck:    true, // audiences are checked below: any of several
		SupportedSigningAlgs: signingAlgorithms,
		Now:                  func() time.Time { return time.Now().Add(-clockSkew) },
	})
	a.verifier.Store(v)
	klog.InfoS("OIDC issuer discovered", "issuer", a.cfg.URL, "jwks", meta.JWKS)
	return nil
}

// errNotReachable refuses the tokens of an issuer not discovered yet.
var errNotReachable = errors.New("the token's issuer has not been reached yet")

// AuthenticateToken verifies a token this issuer signed; a token of another issuer is
// no business of this one's: (nil, false, nil).
func (a *issuerAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	claims, ok := unverifiedClaims(token)
	if !ok || claims.Issuer != a.cfg.URL {
		return nil, false, nil
	}
	resp, err := a.authenticate(ctx, token)
	outcome := "success"
	switch {
	case errors.Is(err, errNotReachable):
		outcome = "unavailable"
	case errors.Is(err, errForbiddenName):
		outcome = "forbidden_name"
	case err != nil:
		outcome = "invalid"
	}
	authentications.WithLabelValues(a.cfg.URL, outcome).Inc()
	if err != nil {
		return nil, false, err
	}
	return resp, true, nil
}

var errForbiddenName = errors.New("names starting with system: are reserved")

func (a *issuerAuthenticator) authenticate(ctx context.Context, token string) (*authenticator.Response, error) {
	v := a.verifier.Load()
	if v == nil {
		return nil, errNotReachable
	}
	idt, err := v.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(idt.Audience, func(aud string) bool { return slices.Contains(a.cfg.Audiences, aud) }) {
		return nil, fmt.Errorf("the token is for %v, not any of %v", idt.Audience, a.cfg.Audiences)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	// go-oidc allows five minutes of not-before skew; this server allows clockSkew.
	if nbf, ok := claims["nbf"].(float64); ok && time.Unix(int64(nbf), 0).After(time.Now().Add(clockSkew)) {
		return nil, errors.New("the token is not valid yet")
	}
	for claim, want := range a.cfg.Required {
		if got, _ := claims[claim].(string); got != want {
			return nil, fmt.Errorf("claim %q must be %q", claim, want)
		}
	}
	name, _ := claims[a.cfg.UsernameClaim].(string)
	if name == "" {
		return nil, fmt.Errorf("the token has no %q claim", a.cfg.UsernameClaim)
	}
	if a.cfg.UsernameClaim == "email" {
		// As kube-apiserver: when present, email_verified must be the boolean true; a
		// string such as "false" (some providers send one) is not a verification.
		if v, present := claims["email_verified"]; present {
			if verified, ok := v.(bool); !ok || !verified {
				return nil, errors.New("the token's email is not verified")
			}
		}
	}
	var groups []string
	if a.cfg.GroupsClaim != "" {
		switch g := claims[a.cfg.GroupsClaim].(type) {
		case string:
			groups = []string{g}
		case []any:
			for _, v := range g {
				if s, ok := v.(string); ok {
					groups = append(groups, s)
				}
			}
		}
	}
	// Refused as the issuer wrote them and as prefixed: an issuer that hands out system:
	// names is misconfigured or compromised, whatever the prefix would make of them.
	system := func(s string) bool { return strings.HasPrefix(s, "system:") }
	if system(name) || system(a.cfg.UsernamePrefix+name) || slices.ContainsFunc(groups, func(g string) bool { return system(g) || system(a.cfg.GroupsPrefix+g) }) {
		return nil, fmt.Errorf("%w: %s in %v", errForbiddenName, name, groups)
	}
	u := &user.DefaultInfo{Name: a.cfg.UsernamePrefix + name}
	if a.cfg.UIDClaim != "" {
		u.UID, _ = claims[a.cfg.UIDClaim].(string)
	}
	for _, g := range groups {
		u.Groups = append(u.Groups, a.cfg.GroupsPrefix+g)
	}
	return &authenticator.Response{User: u}, nil
}

// claimsPeek are the claims read before any verification, to route a token to its
// issuer and to bound how long a result may be cached. Nothing is trusted from them.
type claimsPeek struct {
	Issuer string  `json:"iss"`
	Expiry float64 `json:"exp"`
}

func unverifiedClaims(token string) (claimsPeek, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claimsPeek{}, false
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claimsPeek{}, false
	}
	var c claimsPeek
	return c, json.Unmarshal(data, &c) == nil
}
