// Package issuer is a small OpenID Connect provider for the local stack and the tests:
// discovery, a JWKS whose keys rotate, signed ID tokens with groups, users and groups
// from a file, the authorization-code flow with PKCE (for kubelogin and a console) and
// the device-code grant (for scripts and terminals). It is built on
// github.com/zitadel/oidc's provider and is never in containerservice-apiserver's
// request path: the server only verifies what it signs.
package issuer

import (
	"crypto/subtle"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// Users is the users file: the people who may log in, with their groups.
type Users struct {
	Users []User `json:"users"`
}

// User is one person.
type User struct {
	// Name is the username tokens carry (the sub and preferred_username claims).
	Name string `json:"name"`
	// Password logs the user in. A local development issuer keeps it in clear text.
	Password string `json:"password"`
	// Groups are the groups tokens carry.
	Groups []string `json:"groups,omitempty"`
}

// LoadUsers reads a users file (YAML or JSON).
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var u Users
	if err := yaml.UnmarshalStrict(data, &u); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, user := range u.Users {
		switch {
		case user.Name == "" || user.Password == "":
			return nil, fmt.Errorf("%s: users[%d] needs a name and a password", path, i)
		case strings.HasPrefix(user.Name, "system:"):
			return nil, fmt.Errorf("%s: users[%d].name: names starting with system: are reserved", path, i)
		case seen[user.Name]:
			return nil, fmt.Errorf("%s: users[%d].name: %s twice", path, i, user.Name)
		}
		seen[user.Name] = true
	}
	return &u, nil
}

// check returns the user with that name and password.
func (u *Users) check(name, password string) (User, bool) {
	for _, user := range u.Users {
		if user.Name == name && subtle.ConstantTimeCompare([]byte(user.Password), []byte(password)) == 1 {
			return user, true
		}
	}
	return User{}, false
}

func (u *Users) get(name string) (User, bool) {
	for _, user := range u.Users {
		if user.Name == name {
			return user, true
		}
	}
	return User{}, false
}
