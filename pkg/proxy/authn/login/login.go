// Package login gets an ID token from an OIDC issuer with the device-code grant (RFC
// 8628): the way a terminal logs in, and, with a username and password answering the
// device form as the person would, the way a script or a test does.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Credentials answer the issuer's device form for a script.
type Credentials struct {
	Username, Password string
}

// Token is an ID token and when it expires.
type Token struct {
	IDToken string
	Expiry  time.Time
}

// Device logs in at the issuer as clientID and returns an ID token with the groups. With
// creds, the device form is answered with them; without, prompt is told where the person
// must go and which code to enter, and Device waits until they did (or ctx ends).
func Device(ctx context.Context, client *http.Client, issuerURL, clientID string, creds *Credentials, prompt io.Writer) (*Token, error) {
	var meta struct {
		Issuer     string `json:"issuer"`
		DeviceAuth string `json:"device_authorization_endpoint"`
		Token      string `json:"token_endpoint"`
	}
	if err := getJSON(ctx, client, strings.TrimSuffix(issuerURL, "/")+"/.well-known/openid-configuration", &meta); err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuerURL, err)
	}
	if meta.Issuer != issuerURL || meta.DeviceAuth == "" || meta.Token == "" {
		return nil, fmt.Errorf("%s does not offer the device grant for itself (issuer %q)", issuerURL, meta.Issuer)
	}
	var auth struct {
		DeviceCode      string `json:"device_code"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
		Complete        string `json:"verification_uri_complete"`
		Interval        int    `json:"interval"`
		ExpiresIn       int    `json:"expires_in"`
	}
	if err := postForm(ctx, client, meta.DeviceAuth, url.Values{"client_id": {clientID}, "scope": {"openid profile groups"}}, &auth); err != nil {
		return nil, fmt.Errorf("start the device login: %w", err)
	}
	if creds != nil {
		resp, err := postFormRaw(ctx, client, auth.VerificationURI, url.Values{"user_code": {auth.UserCode}, "username": {creds.Username}, "password": {creds.Password}})
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("log in as %s: the issuer answered %d", creds.Username, resp.StatusCode)
		}
	} else if prompt != nil {
		fmt.Fprintf(prompt, "To log in, open %s and enter the code %s\n", auth.VerificationURI, auth.UserCode)
	}
	interval := time.Duration(max(auth.Interval, 1)) * time.Second
	for {
		var tok struct {
			IDToken   string `json:"id_token"`
			ExpiresIn int    `json:"expires_in"`
			Error     string `json:"error"`
		}
		err := postForm(ctx, client, meta.Token, url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {auth.DeviceCode}, "client_id": {clientID}}, &tok)
		switch {
		case err == nil && tok.IDToken != "":
			return &Token{IDToken: tok.IDToken, Expiry: time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)}, nil
		case err == nil:
			return nil, errors.New("the issuer returned no ID token")
		}
		var oauthErr *oauthError
		if !errors.As(err, &oauthErr) {
			return nil, err
		}
		switch oauthErr.Code {
		case "authorization_pending":
		case "slow_down":
			interval += 5 * time.Second
		default:
			return nil, fmt.Errorf("device login: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func getJSON(ctx context.Context, client *http.Client, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return decode(resp, into)
}

func postForm(ctx context.Context, client *http.Client, u string, form url.Values, into any) error {
	resp, err := postFormRaw(ctx, client, u, form)
	if err != nil {
		return err
	}
	return decode(resp, into)
}

func postFormRaw(ctx context.Context, client *http.Client, u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return client.Do(req)
}

func decode(resp *http.Response, into any) error {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e oauthError
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			return &e
		}
		return fmt.Errorf("%s answered %d: %s", resp.Request.URL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, into)
}
