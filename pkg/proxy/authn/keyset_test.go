package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestAnIssuerDownLaterKeepsItsKeys: when the periodic refresh of the keys fails, tokens
// signed with the keys held are still verified, and the issuer is not asked on every
// request meanwhile.
func TestAnIssuerDownLaterKeepsItsKeys(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	var down atomic.Bool
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	}))
	defer srv.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(`{"sub":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	token, _ := sig.CompactSerialize()

	ks := newKeySet("https://issuer", srv.URL, srv.Client())
	if _, err := ks.VerifySignature(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	ks.mu.Lock()
	ks.fetched = time.Now().Add(-2 * keysRefresh) // the refresh is due
	ks.mu.Unlock()
	for range 5 {
		if _, err := ks.VerifySignature(context.Background(), token); err != nil {
			t.Fatalf("with the issuer down: %v", err)
		}
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the issuer was asked %d times, want twice (the first fetch, one failed refresh)", n)
	}
}
