package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestServiceAccountName(t *testing.T) {
	names := []string{
		"alice@example.com", "Alice@example.com", "a.b", "a-b", "bob", "",
		"oidc:https://issuer.example.com#1234567890", "用户", strings.Repeat("x", 300), "---",
	}
	seen := map[string]string{}
	for _, n := range names {
		sa := ServiceAccountName(n)
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			t.Errorf("%q -> %q is not a valid ServiceAccount name: %v", n, sa, errs)
		}
		if other, ok := seen[sa]; ok {
			t.Errorf("%q and %q both map to %q", n, other, sa)
		}
		seen[sa] = n
		if ServiceAccountName(n) != sa {
			t.Errorf("%q maps to different names", n)
		}
	}
	if got := ServiceAccountName("alice@example.com"); !strings.HasPrefix(got, "u-alice-example-com-") {
		t.Errorf("readable part lost: %s", got)
	}
	if got := ServiceAccountUsername("bob"); got != "system:serviceaccount:ucs-users:"+ServiceAccountName("bob") {
		t.Errorf("username %s", got)
	}
}
