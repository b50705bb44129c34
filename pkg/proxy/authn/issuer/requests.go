package issuer

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization-code login in progress.
type authRequest struct {
	id       string
	created  time.Time
	req      oidc.AuthRequest
	subject  string
	authTime time.Time
	done     bool
}

func (r *authRequest) GetID() string         { return r.id }
func (r *authRequest) GetACR() string        { return "" }
func (r *authRequest) GetAMR() []string      { return []string{"pwd"} }
func (r *authRequest) GetAudience() []string { return []string{r.req.ClientID} }
func (r *authRequest) GetAuthTime() time.Time {
	return r.authTime
}
func (r *authRequest) GetClientID() string { return r.req.ClientID }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.req.CodeChallenge, Method: r.req.CodeChallengeMethod}
}
func (r *authRequest) GetNonce() string                   { return r.req.Nonce }
func (r *authRequest) GetRedirectURI() string             { return r.req.RedirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType { return r.req.ResponseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode { return r.req.ResponseMode }
func (r *authRequest) GetScopes() []string                { return r.req.Scopes }
func (r *authRequest) GetState() string                   { return r.req.State }
func (r *authRequest) GetSubject() string                 { return r.subject }
func (r *authRequest) Done() bool                         { return r.done }

// client is an OIDC client: public (no secret), logging in with PKCE or the device
// grant, as command-line tools and browser consoles do.
type client struct {
	id           string
	redirectURIs []string
	loginURL     func(string) string
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeNative
}
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodNone }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeDeviceCode}
}
func (c *client) LoginURL(id string) string            { return c.loginURL(id) }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return TokenLifetime }
func (c *client) DevMode() bool                        { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) IsScopeAllowed(scope string) bool     { return scope == ScopeGroups }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}
