package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID is the public client the platform's tools and kubeconfigs log in with.
const ClientID = "containerservice"

// Config configures an issuer.
type Config struct {
	// Users are the people who may log in.
	Users *Users
	// Listener is where it serves (TLS is added here); its address must be the one in URL.
	Listener net.Listener
	// URL is the issuer URL (https://host:port), the iss of its tokens.
	URL string
	// Certificate is its TLS serving certificate.
	Certificate tls.Certificate
	// RedirectURIs are where the authorization-code flow may return (kubelogin listens
	// on http://localhost:8000 and :18000 by default).
	RedirectURIs []string
	// RotateEvery rotates the signing key periodically; zero never does.
	RotateEvery time.Duration
}

// Issuer is a running OIDC provider.
type Issuer struct {
	url     string
	storage *storage
	server  *http.Server
	done    chan struct{}
}

// Start serves the issuer until Stop.
func Start(cfg Config) (*Issuer, error) {
	redirects := cfg.RedirectURIs
	if len(redirects) == 0 {
		redirects = []string{"http://localhost:8000", "http://localhost:18000"}
	}
	c := &client{id: ClientID, redirectURIs: redirects, loginURL: func(id string) string { return "/login?authRequestID=" + id }}
	s, err := newStorage(cfg.Users, []*client{c})
	if err != nil {
		return nil, err
	}
	secret := sha256.Sum256([]byte(randomID()))
	provider, err := op.NewOpenIDProvider(cfg.URL, &op.Config{
		CryptoKey:      secret,
		CodeMethodS256: true,
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime: 10 * time.Minute, PollInterval: time.Second, UserFormPath: "/device", UserCode: op.UserCodeBase20,
		},
	}, s, op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("create the OIDC provider: %w", err)
	}
	callback := op.AuthCallbackURL(provider)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("authRequestID")
		if r.Method == http.MethodPost {
			if err := s.login(id, r.FormValue("username"), r.FormValue("password")); err != nil {
				renderForm(w, http.StatusUnauthorized, form{Action: "/login", Hidden: map[string]string{"authRequestID": id}, Error: err.Error()})
				return
			}
			http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
			return
		}
		renderForm(w, http.StatusOK, form{Action: "/login", Hidden: map[string]string{"authRequestID": id}})
	})
	mux.HandleFunc("/device", func(w http.ResponseWriter, r *http.Request) {
		code := r.FormValue("user_code")
		if r.Method == http.MethodPost {
			if err := s.approveDevice(code, r.FormValue("username"), r.FormValue("password")); err != nil {
				renderForm(w, http.StatusUnauthorized, form{Action: "/device", Code: code, AskCode: true, Error: err.Error()})
				return
			}
			fmt.Fprintln(w, "Logged in. You may close this page and return to your terminal.")
			return
		}
		renderForm(w, http.StatusOK, form{Action: "/device", Code: code, AskCode: true})
	})
	mux.Handle("/", provider)
	is := &Issuer{url: cfg.URL, storage: s, done: make(chan struct{})}
	is.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cfg.Certificate}, MinVersion: tls.VersionTLS12}}
	go func() {
		defer close(is.done)
		if err := is.server.ServeTLS(cfg.Listener, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("OIDC issuer stopped", "err", err)
		}
	}()
	if cfg.RotateEvery > 0 {
		go func() {
			tick := time.NewTicker(cfg.RotateEvery)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					_ = is.Rotate()
				case <-is.done:
					return
				}
			}
		}()
	}
	return is, nil
}

// URL is the issuer URL.
func (is *Issuer) URL() string { return is.url }

// Rotate makes the next signing key the active one (it was published before); tokens
// signed with the old key still verify until they expire.
func (is *Issuer) Rotate() error { return is.storage.rotate() }

// SigningKeyID is the key id tokens are signed with now.
func (is *Issuer) SigningKeyID() string {
	is.storage.mu.Lock()
	defer is.storage.mu.Unlock()
	return is.storage.keys.active.id
}

// Sign signs arbitrary claims with the active key, as the issuer would: for tests that
// need tokens the login flows would never hand out (expired, for another audience, …).
func (is *Issuer) Sign(claims map[string]any) (string, error) {
	is.storage.mu.Lock()
	key := is.storage.keys.active
	is.storage.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), key.id))
	if err != nil {
		return "", err
	}
	payload, err := jsonMarshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Stop stops serving.
func (is *Issuer) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = is.server.Shutdown(ctx)
	<-is.done
}

type form struct {
	Action, Code, Error string
	AskCode             bool
	Hidden              map[string]string
}

var formTemplate = template.Must(template.New("form").Parse(`<!doctype html>
<html><head><title>containerservice login</title></head><body>
<h1>Log in to containerservice</h1>
{{if .Error}}<p style="color:#b00">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
{{if .AskCode}}<p><label>Code <input name="user_code" value="{{.Code}}"></label></p>{{end}}
<p><label>Username <input name="username" autofocus></label></p>
<p><label>Password <input name="password" type="password"></label></p>
<p><button type="submit">Log in</button></p>
</form></body></html>
`))

func renderForm(w http.ResponseWriter, status int, f form) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = formTemplate.Execute(w, f)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
