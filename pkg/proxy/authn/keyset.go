package authn

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Key refresh: the JWKS is fetched again every keysRefresh, and at once for a key id it
// does not hold (a rotation), but then at most every unknownKeyRefetch: a flood of tokens
// with made-up key ids costs the issuer one request per interval, not one per token.
const (
	keysRefresh       = 5 * time.Minute
	unknownKeyRefetch = 10 * time.Second
)

// keySet verifies signatures with the issuer's published keys (go-oidc's StaticKeySet
// does the verifying), fetching them as the constants above say.
type keySet struct {
	issuer, url string
	client      *http.Client
	group       singleflight.Group

	mu          sync.Mutex
	keys        *oidc.StaticKeySet
	ids         map[string]bool
	fetched     time.Time
	lastUnknown time.Time
}

var _ oidc.KeySet = &keySet{}

func newKeySet(issuer, url string, client *http.Client) *keySet {
	return &keySet{issuer: issuer, url: url, client: client}
}

// VerifySignature returns the payload of a JWT signed by one of the issuer's keys.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	kid := keyID(jwt)
	k.mu.Lock()
	fetch := k.keys == nil || time.Since(k.fetched) > keysRefresh
	if !fetch && !k.ids[kid] {
		if time.Since(k.lastUnknown) < unknownKeyRefetch {
			k.mu.Unlock()
			fetches.WithLabelValues(k.issuer, "throttled").Inc()
			return nil, fmt.Errorf("unknown key id %q (the issuer's keys were fetched less than %s ago)", kid, unknownKeyRefetch)
		}
		k.lastUnknown = time.Now()
		fetch = true
	}
	k.mu.Unlock()
	var fetchErr error
	if fetch {
		_, fetchErr, _ = k.group.Do("fetch", func() (any, error) { return nil, k.fetch(ctx) })
	}
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if fetchErr != nil && keys == nil {
		return nil, fetchErr
	}
	// An issuer that is down keeps its people logged in with the keys fetched before.
	if keys == nil {
		return nil, fmt.Errorf("no keys of %s yet", k.issuer)
	}
	return keys.VerifySignature(ctx, jwt)
}

// fetch replaces the keys with the issuer's current JWKS (public signing keys only).
func (k *keySet) fetch(ctx context.Context) error {
	set, err := k.get(ctx)
	if err != nil {
		fetches.WithLabelValues(k.issuer, "error").Inc()
		k.mu.Lock()
		if k.keys != nil {
			// The keys held stay in use; the next refresh is tried after
			// unknownKeyRefetch, not on every request.
			k.fetched = time.Now().Add(unknownKeyRefetch - keysRefresh)
		}
		k.mu.Unlock()
		return fmt.Errorf("fetch the keys of %s: %w", k.issuer, err)
	}
	static := &oidc.StaticKeySet{}
	ids := map[string]bool{}
	for _, key := range set.Keys {
		if !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		static.PublicKeys = append(static.PublicKeys, crypto.PublicKey(key.Key))
		ids[key.KeyID] = true
	}
	fetches.WithLabelValues(k.issuer, "ok").Inc()
	k.mu.Lock()
	k.keys, k.ids, k.fetched = static, ids, time.Now()
	k.mu.Unlock()
	return nil
}

func (k *keySet) get(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d", k.url, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.url, err)
	}
	return &set, nil
}

// keyID reads the kid of a JWT's header without verifying anything ("" when absent).
func keyID(jwt string) string {
	header, _, ok := strings.Cut(jwt, ".")
	if !ok {
		return ""
	}
	data, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		KeyID string `json:"kid"`
	}
	_ = json.Unmarshal(data, &h)
	return h.KeyID
}
