package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// TestBreakGlassIsNamedAuditedAndRevocable: a break-glass credential names the person who
// asked for it (never system:masters), the cluster's audit log shows what that person
// did, and deleting one ClusterRoleBinding inside the cluster revokes every such
// credential at once, without a rotation, for good: the platform does not put it back.
func TestBreakGlassIsNamedAuditedAndRevocable(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	ns := env.NewTenant(t)
	provision(ctx, t, ns, "glass")
	_, cfg := adminKubeconfig(ctx, t, env.CS, ns, "glass", 3600)
	glass := kubernetes.NewForConfigOrDie(cfg)

	review, err := glass.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	who := review.Status.UserInfo
	if who.Username != v1alpha1.BreakGlassUserPrefix+"admin" || !slices.Contains(who.Groups, v1alpha1.BreakGlassGroup) || slices.Contains(who.Groups, "system:masters") {
		t.Errorf("break-glass identity %s %v, want %sadmin in %s and never system:masters", who.Username, who.Groups, v1alpha1.BreakGlassUserPrefix, v1alpha1.BreakGlassGroup)
	}

	if _, err := glass.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "glass-was-here"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(env.ClusterDir(ns, "glass"), "logs", "audit.log")
	eventually(ctx, t, "the audit log names the person and what they did", func() (bool, error) {
		return audited(auditLog, v1alpha1.BreakGlassUserPrefix+"admin", "create", "configmaps", "glass-was-here")
	})

	// An operator's own way in that survives the revocation: a ServiceAccount made
	// cluster-admin, with a token.
	auditor := operatorClient(ctx, t, glass, cfg)

	if err := glass.RbacV1().ClusterRoleBindings().Delete(ctx, v1alpha1.BreakGlassGroup, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the break-glass credential is refused", func() (bool, error) {
		_, err := glass.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return apierrors.IsForbidden(err), err
	})
	_, freshCfg := adminKubeconfig(ctx, t, env.CS, ns, "glass", 600)
	if _, err := kubernetes.NewForConfigOrDie(freshCfg).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a break-glass credential issued after the revocation: %v, want 403", err)
	}

	// The platform applies its objects again after a spec change: the binding stays gone.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		c, err := env.CS.ContainerserviceV1alpha1().Clusters(ns).Get(ctx, "glass", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c.Spec.Administrators = append(c.Spec.Administrators, v1alpha1.Subject{Kind: v1alpha1.SubjectKindUser, Name: "bob@example.com"})
		_, err = env.CS.ContainerserviceV1alpha1().Clusters(ns).Update(ctx, c, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the new administrator's ServiceAccount is applied", func() (bool, error) {
		_, err := auditor.CoreV1().ServiceAccounts(v1alpha1.UsersNamespace).Get(ctx, v1alpha1.ServiceAccountName("bob@example.com"), metav1.GetOptions{})
		return err == nil, err
	})
	if _, err := auditor.RbacV1().ClusterRoleBindings().Get(ctx, v1alpha1.BreakGlassGroup, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the platform put the revoked break-glass binding back: %v", err)
	}
}

// operatorClient makes a ServiceAccount bound to cluster-admin with the given client and
// returns a client that uses its token.
func operatorClient(ctx context.Context, t *testing.T, admin kubernetes.Interface, base *rest.Config) kubernetes.Interface {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "operator", Namespace: "kube-system"}}
	if _, err := admin.CoreV1().ServiceAccounts("kube-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "operator"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "operator", Namespace: "kube-system"}}}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seconds := int64(3600)
	tok, err := admin.CoreV1().ServiceAccounts("kube-system").CreateToken(ctx, "operator",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(base)
	cfg.BearerToken = tok.Status.Token
	return kubernetes.NewForConfigOrDie(cfg)
}

// audited reports whether the audit log holds an event of user doing verb on the named object.
func audited(file, user, verb, resource, name string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var ev struct {
			Verb string `json:"verb"`
			User struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Resource, Name string
			} `json:"objectRef"`
		}
		if json.Unmarshal(scanner.Bytes(), &ev) == nil && ev.User.Username == user && ev.Verb == verb &&
			ev.ObjectRef.Resource == resource && ev.ObjectRef.Name == name {
			return true, nil
		}
	}
	return false, scanner.Err()
}
