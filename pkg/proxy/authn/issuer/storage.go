package issuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// TokenLifetime is how long ID and access tokens live.
const TokenLifetime = time.Hour

// storage keeps everything in memory: a restart of the issuer logs everyone out, which
// is what a development issuer should do.
type storage struct {
	users   *Users
	clients map[string]*client

	mu        sync.Mutex
	requests  map[string]*authRequest
	codes     map[string]string // code -> request id
	devices   map[string]*device
	userCodes map[string]string // user code -> device code
	tokens    map[string]token
	keys      keyRing
}

type token struct {
	subject, clientID string
	expires           time.Time
}

type device struct {
	state    op.DeviceAuthorizationState
	userCode string
}

func newStorage(users *Users, clients []*client) (*storage, error) {
	s := &storage{users: users, clients: map[string]*client{}, requests: map[string]*authRequest{}, codes: map[string]string{},
		devices: map[string]*device{}, userCodes: map[string]string{}, tokens: map[string]token{}}
	for _, c := range clients {
		s.clients[c.id] = c
	}
	var err error
	if s.keys.active, err = newKey(); err != nil {
		return nil, err
	}
	if s.keys.next, err = newKey(); err != nil {
		return nil, err
	}
	return s, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var errNotFound = errors.New("not found")

// --- authorization-code flow ---

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	r := &authRequest{id: randomID(), created: time.Now(), req: *req}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[r.id] = r
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok || time.Since(r.created) > 10*time.Minute {
		return nil, fmt.Errorf("auth request %s: %w", id, errNotFound)
	}
	return r, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// login marks an auth request as done by the user, once they gave their password.
func (s *storage) login(id, name, password string) error {
	u, ok := s.users.check(name, password)
	if !ok {
		return errors.New("wrong username or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return fmt.Errorf("auth request %s: %w", id, errNotFound)
	}
	r.subject, r.authTime, r.done = u.Name, time.Now(), true
	return nil
}

// --- device-code flow ---

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.userCodes[userCode]; taken {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &device{userCode: userCode, state: op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}}
	s.userCodes[userCode] = deviceCode
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.state.ClientID != clientID {
		return nil, fmt.Errorf("device code: %w", errNotFound)
	}
	state := d.state
	return &state, nil
}

// approveDevice completes a device authorization for the user who gave their password.
func (s *storage) approveDevice(userCode, name, password string) error {
	u, ok := s.users.check(name, password)
	if !ok {
		return errors.New("wrong username or password")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	deviceCode, ok := s.userCodes[userCode]
	if !ok {
		return errors.New("unknown or expired code")
	}
	d := s.devices[deviceCode]
	if time.Now().After(d.state.Expires) {
		return errors.New("the code expired")
	}
	d.state.Done, d.state.Subject, d.state.AuthTime, d.state.AMR = true, u.Name, time.Now(), []string{"pwd"}
	delete(s.userCodes, userCode)
	return nil
}

// --- tokens ---

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID := ""
	switch r := req.(type) {
	case *authRequest:
		clientID = r.req.ClientID
	case *op.DeviceAuthorizationState:
		clientID = r.ClientID
	}
	id, expires := randomID(), time.Now().Add(TokenLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = token{subject: req.GetSubject(), clientID: clientID, expires: expires}
	return id, expires, nil
}

var errNoRefresh = errors.New("refresh tokens are not issued by this issuer: log in again")

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNoRefresh
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNoRefresh
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenOrID)
	return nil
}

// --- clients and claims ---

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %s: %w", id, errNotFound)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, _ string) error {
	return fmt.Errorf("client %s is public: it has no secret", id)
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims: the name, and the groups when
// the groups scope was asked for.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.userinfo(info, req.GetSubject(), scopes)
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) || t.subject != subject {
		return errors.New("the token is invalid or expired")
	}
	return s.userinfo(info, subject, []string{oidc.ScopeOpenID, oidc.ScopeProfile, ScopeGroups})
}

// ScopeGroups asks for the groups claim.
const ScopeGroups = "groups"

func (s *storage) userinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.users.get(subject)
	if !ok {
		return fmt.Errorf("user %s: %w", subject, errNotFound)
	}
	info.Subject = u.Name
	info.PreferredUsername = u.Name
	if slices.Contains(scopes, ScopeGroups) {
		info.AppendClaims("groups", u.Groups)
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// --- keys ---

// keyRing holds the key that signs, the one that will after the next rotation (already
// published, so that verifiers know it before it signs anything), and retired ones that
// still verify tokens signed before their retirement.
type keyRing struct {
	active, next *signingKey
	retired      []*signingKey
}

type signingKey struct {
	id      string
	key     *rsa.PrivateKey
	retired time.Time
}

func newKey() (*signingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &signingKey{id: randomID()[:16], key: k}, nil
}

func (k *signingKey) ID() string                                  { return k.id }
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys.active, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := []op.Key{publicKey{s.keys.active}, publicKey{s.keys.next}}
	for _, k := range s.keys.retired {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

// rotate makes the next key the signing one; retired keys are published until every
// token they signed has expired.
func (s *storage) rotate() error {
	next, err := newKey()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys.active.retired = time.Now()
	s.keys.retired = append(s.keys.retired, s.keys.active)
	s.keys.retired = slices.DeleteFunc(s.keys.retired, func(k *signingKey) bool { return time.Since(k.retired) > TokenLifetime })
	s.keys.active, s.keys.next = s.keys.next, next
	return nil
}
