package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/install"
	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

// issuing records the credential it is asked for; the rest of the Driver is unused here.
type issuing struct {
	provisioner.Driver
	asked provisioner.Credential
}

func (d *issuing) AdminKubeconfig(_ context.Context, _ *v1alpha1.Cluster, cred provisioner.Credential) ([]byte, time.Time, error) {
	d.asked = cred
	return []byte("kubeconfig"), time.Now().Add(cred.TTL), nil
}

func (d *issuing) RESTConfig(context.Context, *v1alpha1.Cluster, provisioner.Identity) (*rest.Config, error) {
	return nil, nil
}

// running answers every get with a Running cluster.
type running struct{}

func (running) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	return &cs.Cluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "acme"}, Status: cs.ClusterStatus{Phase: cs.ClusterRunning}}, nil
}

// TestBreakGlassCredentials: the certificate names the caller behind the break-glass
// prefix, carries only the break-glass group (never system:masters, whatever groups the
// caller has), and lives no longer than the server's cap.
func TestBreakGlassCredentials(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	driver := &issuing{}
	r := NewAdminKubeconfigREST(running{}, driver, scheme, 30*time.Minute)
	ctx := genericapirequest.WithUser(genericapirequest.WithNamespace(context.Background(), "acme"),
		&user.DefaultInfo{Name: "alice@example.com", Groups: []string{"system:masters", "ops"}})
	seconds := int64(24 * 3600)
	out, err := r.Create(ctx, "prod", &cs.AdminKubeconfigRequest{Spec: cs.AdminKubeconfigRequestSpec{ExpirationSeconds: &seconds, Endpoint: cs.EndpointExternal}}, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if driver.asked.User != v1alpha1.BreakGlassUserPrefix+"alice@example.com" || !slices.Equal(driver.asked.Groups, []string{v1alpha1.BreakGlassGroup}) {
		t.Errorf("credential for %q in %v, want %salice@example.com in [%s] only", driver.asked.User, driver.asked.Groups, v1alpha1.BreakGlassUserPrefix, v1alpha1.BreakGlassGroup)
	}
	if driver.asked.TTL != 30*time.Minute {
		t.Errorf("a day was asked under a 30 minute cap: got %s", driver.asked.TTL)
	}
	if left := time.Until(out.(*cs.AdminKubeconfigRequest).Status.ExpirationTimestamp.Time); left > 30*time.Minute || left < 29*time.Minute {
		t.Errorf("status says it expires in %s, want the capped 30 minutes", left)
	}
}
