package authn

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// successTTL is how long a verified token's result is reused, never past the token's
// expiry. Failures are not cached: a token that failed before the issuer was reachable
// works at once after.
const successTTL = 10 * time.Second

var (
	authentications = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "containerservice", Subsystem: "oidc", Name: "authentications_total",
		Help: "OIDC token verifications by issuer and outcome (success, invalid, expired, forbidden_name, unavailable).", StabilityLevel: metrics.ALPHA,
	}, []string{"issuer", "result"})
	fetches = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "containerservice", Subsystem: "oidc", Name: "jwks_fetches_total",
		Help: "Fetches of issuers' signing keys by issuer and result (ok, error, throttled).", StabilityLevel: metrics.ALPHA,
	}, []string{"issuer", "result"})
)

func init() {
	legacyregistry.MustRegister(authentications, fetches)
}

// New returns a request authenticator for the bearer tokens of the issuers. A request
// with no bearer token, or a token of no configured issuer, is left to the next
// authenticator ((nil, false, nil)); a token of a configured issuer that fails is refused
// with the error. Issuers are discovered in the background until ctx ends.
func New(ctx context.Context, issuers []Issuer) (authenticator.Request, error) {
	var tokens []authenticator.Token
	urls := map[string]bool{}
	for _, is := range issuers {
		a, err := newIssuerAuthenticator(ctx, is)
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, a)
		urls[is.URL] = true
	}
	cached := tokencache.New(tokenunion.NewFailOnError(tokens...), false, successTTL, 0)
	bearer := authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
		token := bearerToken(r)
		if token == "" {
			return nil, false, nil
		}
		claims, ok := unverifiedClaims(token)
		if !ok || !urls[claims.Issuer] {
			return nil, false, nil // another kind of token: the host's, for TokenReview
		}
		// Checked before the cache, so that no cached result outlives its token.
		if time.Unix(int64(claims.Expiry), 0).Before(time.Now().Add(-clockSkew)) {
			authentications.WithLabelValues(claims.Issuer, "expired").Inc()
			return nil, false, fmt.Errorf("the token expired at %s", time.Unix(int64(claims.Expiry), 0).UTC().Format(time.RFC3339))
		}
		resp, ok, err := cached.AuthenticateToken(r.Context(), token)
		if !ok || err != nil {
			return nil, false, err
		}
		r.Header.Del("Authorization")
		return resp, true, nil
	})
	return group.NewAuthenticatedGroupAdder(bearer), nil
}

func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
