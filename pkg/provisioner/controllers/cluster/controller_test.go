package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
	"github.com/ucloudstack/containerservice/pkg/generated/clientset/versioned/fake"
	csinformers "github.com/ucloudstack/containerservice/pkg/generated/informers/externalversions"
	"github.com/ucloudstack/containerservice/pkg/provisioner"
)

func healthy() *provisioner.Observation {
	obs := &provisioner.Observation{Components: map[string]provisioner.Health{}, Internal: "https://127.0.0.1:1", External: "https://ext:1", Version: "v1.37.1"}
	for _, c := range provisioner.Components {
		obs.Components[c] = provisioner.Health{Healthy: true}
	}
	return obs
}

// unhealthyScheduler is a control plane whose scheduler does not answer.
func unhealthyScheduler() *provisioner.Observation {
	obs := healthy()
	obs.Components[provisioner.Scheduler] = provisioner.Health{Message: "connection refused"}
	return obs
}

func withPhase(p v1alpha1.ClusterPhase) *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Generation: 3}, Status: v1alpha1.ClusterStatus{Phase: p}}
}

func TestDesiredStatus(t *testing.T) {
	down := healthy()
	down.Components[provisioner.Etcd] = provisioner.Health{Message: "not running: etcd exited (exit status 1)"}
	rolling := healthy()
	rolling.Components[provisioner.APIServer] = provisioner.Health{Message: "connection refused"}
	rolling.Updating = true
	surging := healthy()
	surging.Updating = true

	tests := map[string]struct {
		from      v1alpha1.ClusterPhase
		obs       *provisioner.Observation
		err, boot error
		phase     v1alpha1.ClusterPhase
		ready     metav1.ConditionStatus
		reason    string
		inMessage string
	}{
		"all healthy":        {v1alpha1.ClusterPending, healthy(), nil, nil, v1alpha1.ClusterRunning, metav1.ConditionTrue, "ControlPlaneReady", "every control plane component"},
		"one component down": {v1alpha1.ClusterPending, down, nil, nil, v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "ComponentsUnhealthy", "Etcd"},
		"missing binaries": {v1alpha1.ClusterPending, nil, &provisioner.PermanentError{Err: errors.New("kube-apiserver for Kubernetes v1.37.1 is missing from /x: run hack/kube-binaries.sh")}, nil,
			v1alpha1.ClusterFailed, metav1.ConditionFalse, "ProvisioningFailed", "run hack/kube-binaries.sh"},
		"nothing observed before running":  {v1alpha1.ClusterPending, nil, errors.New("disk full"), nil, v1alpha1.ClusterProvisioning, metav1.ConditionUnknown, "NotObserved", "disk full (retrying)"},
		"nothing observed while running":   {v1alpha1.ClusterRunning, nil, errors.New("disk full"), nil, v1alpha1.ClusterRunning, metav1.ConditionUnknown, "NotObserved", "disk full"},
		"bootstrap failed at first":        {v1alpha1.ClusterProvisioning, healthy(), nil, &stepError{"BootstrapFailed", errors.New("apply namespace ucs-users: boom")}, v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "BootstrapFailed", "ucs-users"},
		"bootstrap failed later":           {v1alpha1.ClusterRunning, healthy(), nil, &stepError{"BootstrapFailed", errors.New("apply namespace ucs-users: boom")}, v1alpha1.ClusterUpdating, metav1.ConditionFalse, "BootstrapFailed", "ucs-users"},
		"rotation failed":                  {v1alpha1.ClusterRunning, healthy(), nil, &stepError{"RotationFailed", errors.New("rotate credentials: disk full")}, v1alpha1.ClusterUpdating, metav1.ConditionFalse, "RotationFailed", "disk full"},
		"a running cluster rolls out":      {v1alpha1.ClusterRunning, rolling, nil, nil, v1alpha1.ClusterUpdating, metav1.ConditionFalse, "ComponentsUnhealthy", "APIServer"},
		"a rollout goes on":                {v1alpha1.ClusterUpdating, rolling, nil, nil, v1alpha1.ClusterUpdating, metav1.ConditionFalse, "ComponentsUnhealthy", "APIServer"},
		"a rollout that serves throughout": {v1alpha1.ClusterRunning, surging, nil, nil, v1alpha1.ClusterUpdating, metav1.ConditionTrue, "ControlPlaneReady", ""},
		"a rollout ends":                   {v1alpha1.ClusterUpdating, healthy(), nil, nil, v1alpha1.ClusterRunning, metav1.ConditionTrue, "ControlPlaneReady", ""},
		"a crash is no update":             {v1alpha1.ClusterRunning, down, nil, nil, v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "ComponentsUnhealthy", "Etcd"},
		"a new cluster is not updating":    {v1alpha1.ClusterProvisioning, rolling, nil, nil, v1alpha1.ClusterProvisioning, metav1.ConditionFalse, "ComponentsUnhealthy", "APIServer"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := desiredStatus(withPhase(tc.from), tc.obs, tc.err, tc.boot)
			if st.Phase != tc.phase {
				t.Errorf("phase %s, want %s", st.Phase, tc.phase)
			}
			if st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration %d, want 3", st.ObservedGeneration)
			}
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ClusterConditionReady)
			if ready == nil || ready.Status != tc.ready || ready.Reason != tc.reason || !strings.Contains(ready.Message, tc.inMessage) {
				t.Errorf("Ready condition %+v, want %s %s containing %q", ready, tc.ready, tc.reason, tc.inMessage)
			}
		})
	}

	st := desiredStatus(withPhase(v1alpha1.ClusterPending), down, nil, nil)
	if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ClusterConditionEtcdReady); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "exit status 1") {
		t.Errorf("EtcdReady %+v", c)
	}
	if st.Endpoints.External != "https://ext:1" || st.Version != "v1.37.1" {
		t.Errorf("endpoints %+v version %s", st.Endpoints, st.Version)
	}
	// A component that was True turns Unknown once nothing can be observed.
	was := withPhase(v1alpha1.ClusterRunning)
	was.Status = desiredStatus(was, healthy(), nil, nil)
	st = desiredStatus(was, nil, errors.New("the driver is shutting down"), nil)
	for _, comp := range provisioner.Components {
		if c := meta.FindStatusCondition(st.Conditions, provisioner.ConditionTypes[comp]); c == nil || c.Status != metav1.ConditionUnknown {
			t.Errorf("%s after an unobservable pass: %+v, want Unknown", comp, c)
		}
	}
}

// fakeDriver records what the controller asks of it.
type fakeDriver struct {
	mu          sync.Mutex
	obs         *provisioner.Observation
	ensureErr   error
	deleted     []string
	rotations   []string
	held        []provisioner.Held
	quarantined []string
}

func (f *fakeDriver) Ensure(context.Context, *v1alpha1.Cluster) (*provisioner.Observation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.obs, f.ensureErr
}
func (f *fakeDriver) Delete(_ context.Context, ns, name, uid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, ns+"/"+name+"/"+uid)
	return nil
}
func (f *fakeDriver) Held() ([]provisioner.Held, error) { return f.held, nil }
func (f *fakeDriver) Quarantine(_ context.Context, h provisioner.Held) (string, error) {
	if h.Running {
		return "", provisioner.ErrRunning
	}
	f.quarantined = append(f.quarantined, h.Namespace+"/"+h.Name+"/"+h.UID)
	return "/q/" + h.UID, nil
}
func (f *fakeDriver) AdminKubeconfig(context.Context, *v1alpha1.Cluster, provisioner.Credential) ([]byte, time.Time, error) {
	return nil, time.Time{}, nil
}
func (f *fakeDriver) RotateCredentials(_ context.Context, _ *v1alpha1.Cluster, token string) error {
	f.rotations = append(f.rotations, token)
	return nil
}
func (f *fakeDriver) RESTConfig(context.Context, *v1alpha1.Cluster, provisioner.Identity) (*rest.Config, error) {
	return &rest.Config{Host: "https://127.0.0.1:1"}, nil
}
func (f *fakeDriver) EnsureNodeAgent(context.Context, *v1alpha1.Cluster, bool) (provisioner.Health, error) {
	return provisioner.Health{Healthy: true}, nil
}
func (f *fakeDriver) Shutdown()              {}
func (f *fakeDriver) Changes() <-chan string { return nil }

type fixture struct {
	ctrl       *Controller
	client     *fake.Clientset
	driver     *fakeDriver
	recorder   *record.FakeRecorder
	store      cache.Indexer
	bootstraps int
	// waiting is what usercluster.Usable answers.
	waiting string
}

func newFixture(t *testing.T, objs ...*v1alpha1.Cluster) *fixture {
	t.Helper()
	var runtimeObjs []runtime.Object
	for _, o := range objs {
		runtimeObjs = append(runtimeObjs, o)
	}
	f := &fixture{client: fake.NewSimpleClientset(runtimeObjs...), driver: &fakeDriver{obs: healthy()}, recorder: record.NewFakeRecorder(100)}
	factory := csinformers.NewSharedInformerFactory(f.client, 0).Containerservice().V1alpha1()
	informer := factory.Clusters()
	ctrl, err := New(f.client, informer, factory.Nodes(), f.driver, f.recorder)
	if err != nil {
		t.Fatal(err)
	}
	ctrl.bootstrap = func(context.Context, kubernetes.Interface, *v1alpha1.Cluster) error {
		f.bootstraps++
		return nil
	}
	ctrl.usable = func(context.Context, kubernetes.Interface) (string, error) { return f.waiting, nil }
	f.ctrl, f.store = ctrl, informer.Informer().GetIndexer()
	for _, o := range objs {
		if err := f.store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// sync copies the API's object into the informer's cache, as a watch event would.
func (f *fixture) sync(t *testing.T, ns, name string) *v1alpha1.Cluster {
	t.Helper()
	c, err := f.client.ContainerserviceV1alpha1().Clusters(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Update(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newCluster() *v1alpha1.Cluster {
	return &v1alpha1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "acme", UID: "u1", Generation: 1}}
}

func TestReconcileGuardsReportsAndBootstraps(t *testing.T) {
	f := newFixture(t, newCluster())
	ctx := context.Background()
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	c := f.sync(t, "acme", "prod")
	if !slices.Contains(c.Finalizers, v1alpha1.ClusterFinalizer) {
		t.Fatalf("no finalizer after the first pass: %v", c.Finalizers)
	}
	after, err := f.ctrl.Reconcile(ctx, "acme/prod")
	if err != nil {
		t.Fatal(err)
	}
	c = f.sync(t, "acme", "prod")
	if c.Status.Phase != v1alpha1.ClusterRunning || !meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady) || after != pollReady {
		t.Errorf("status %+v, next look in %s", c.Status, after)
	}
	if f.bootstraps != 1 {
		t.Errorf("bootstrapped %d times, want 1", f.bootstraps)
	}
	if ev := <-f.recorder.Events; !strings.Contains(ev, "Running") {
		t.Errorf("event %q, want Running", ev)
	}
	// Nothing changed: no second bootstrap, no status write.
	writes := countActions(f.client, "update")
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if f.bootstraps != 1 || countActions(f.client, "update") != writes {
		t.Errorf("an unchanged cluster was bootstrapped again (%d) or written (%d updates, was %d)", f.bootstraps, countActions(f.client, "update"), writes)
	}
	// A spec change (new administrators) is applied inside at once.
	c.Generation = 2
	if err := f.store.Update(c); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if f.bootstraps != 2 {
		t.Errorf("a new generation was not bootstrapped: %d", f.bootstraps)
	}
}

// A control plane that answers is not Ready while what a workload needs is missing: the
// phase stays Provisioning, the condition names what it waits for, and it is looked at
// again within a moment, without an error's backoff. Once it is there, Running and Ready.
func TestReadyWaitsForWhatAWorkloadNeeds(t *testing.T) {
	f := newFixture(t, newCluster())
	ctx := context.Background()
	f.waiting = "the default ServiceAccount of namespace default"
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil { // adds the finalizer
		t.Fatal(err)
	}
	f.sync(t, "acme", "prod")
	for range 2 {
		after, err := f.ctrl.Reconcile(ctx, "acme/prod")
		if err != nil {
			t.Fatalf("waiting for the defaults is no error: %v", err)
		}
		f.sync(t, "acme", "prod")
		if after != 250*time.Millisecond {
			t.Errorf("looked at again after %s, want 250ms", after)
		}
	}
	c := f.sync(t, "acme", "prod")
	ready := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ClusterConditionReady)
	if c.Status.Phase != v1alpha1.ClusterProvisioning || ready == nil || ready.Status != metav1.ConditionFalse ||
		ready.Reason != waitingForDefaults || !strings.Contains(ready.Message, "default ServiceAccount") {
		t.Fatalf("phase %s, Ready %+v", c.Status.Phase, ready)
	}
	f.waiting = ""
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	c = f.sync(t, "acme", "prod")
	if c.Status.Phase != v1alpha1.ClusterRunning || !meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionReady) {
		t.Errorf("phase %s, conditions %v", c.Status.Phase, c.Status.Conditions)
	}
	if !meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ClusterConditionDefaultsReady) {
		t.Errorf("DefaultsReady not recorded: %v", c.Status.Conditions)
	}
	// Once seen, the defaults are kube-controller-manager's to keep: not waited for again,
	// even after a component's blip took the cluster out of Running.
	f.waiting = "the root CA"
	f.driver.obs = unhealthyScheduler()
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err == nil {
		f.sync(t, "acme", "prod")
	}
	f.driver.obs = healthy()
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if c = f.sync(t, "acme", "prod"); c.Status.Phase != v1alpha1.ClusterRunning {
		t.Errorf("a cluster that had its defaults waits for them again: %s %v", c.Status.Phase, c.Status.Conditions)
	}
}

func countActions(c *fake.Clientset, verb string) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == verb {
			n++
		}
	}
	return n
}

// TestRotationPassesItsTokenAndIsRecorded: the driver gets the annotation's token (it
// rotates once per token), and status shows it; a status write that fails is retried
// with the same token.
func TestRotationPassesItsTokenAndIsRecorded(t *testing.T) {
	c := newCluster()
	c.Finalizers = []string{v1alpha1.ClusterFinalizer}
	c.Annotations = map[string]string{v1alpha1.RotateCredentialsAnnotation: "r1"}
	c.Status.Phase = v1alpha1.ClusterRunning
	f := newFixture(t, c)
	conflicts := 1
	f.client.PrependReactor("update", "clusters", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(v1alpha1.Resource("clusters"), "prod", errors.New("changed meanwhile"))
		}
		return false, nil, nil
	})
	if _, err := f.ctrl.Reconcile(context.Background(), "acme/prod"); !apierrors.IsConflict(err) {
		t.Fatalf("first pass: %v, want the conflict alone", err)
	}
	if _, err := f.ctrl.Reconcile(context.Background(), "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.driver.rotations, []string{"r1", "r1"}) {
		t.Errorf("rotations asked %v, want the same token twice (the driver does it once)", f.driver.rotations)
	}
	if got := f.sync(t, "acme", "prod"); got.Status.CredentialsRotation != "r1" {
		t.Errorf("status.credentialsRotation %q", got.Status.CredentialsRotation)
	}
	// Done: the same token is not asked again.
	if _, err := f.ctrl.Reconcile(context.Background(), "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if len(f.driver.rotations) != 2 {
		t.Errorf("a completed rotation was asked again: %v", f.driver.rotations)
	}
}

func TestDeletionTearsDownThenReleases(t *testing.T) {
	c := newCluster()
	c.Finalizers = []string{v1alpha1.ClusterFinalizer, "example.com/other"}
	now := metav1.Now()
	c.DeletionTimestamp = &now
	f := newFixture(t, c)
	if _, err := f.ctrl.Reconcile(context.Background(), "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.driver.deleted, []string{"acme/prod/u1"}) {
		t.Errorf("driver deletions %v", f.driver.deleted)
	}
	got := f.sync(t, "acme", "prod")
	if slices.Contains(got.Finalizers, v1alpha1.ClusterFinalizer) || !slices.Contains(got.Finalizers, "example.com/other") {
		t.Errorf("finalizers after teardown %v", got.Finalizers)
	}
	if got.Status.Phase != v1alpha1.ClusterDeleting {
		t.Errorf("phase %s, want Deleting", got.Status.Phase)
	}
}

// TestDataGoesOnlyWithProof: a Cluster missing from the cache is no reason to delete its
// control plane; a deletion the watch delivered is; a tombstone (a relist found it
// gone, which a restored or wrong etcd also causes) is not.
func TestDataGoesOnlyWithProof(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.ctrl.Reconcile(ctx, "acme/missing"); err != nil {
		t.Fatal(err)
	}
	gone := newCluster()
	f.ctrl.onDelete(cache.DeletedFinalStateUnknown{Key: "acme/prod", Obj: gone})
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if len(f.driver.deleted) != 0 {
		t.Fatalf("deleted without proof: %v", f.driver.deleted)
	}
	f.ctrl.onDelete(gone)
	if _, err := f.ctrl.Reconcile(ctx, "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.driver.deleted, []string{"acme/prod/u1"}) {
		t.Errorf("a watched deletion did not delete the data: %v", f.driver.deleted)
	}
}

// TestARecreatedNameLetsTheEarlierClusterGo: a Cluster deleted and created again under
// the same name before the controller got to it: the earlier UID's control plane is
// deleted (its deletion was seen), the new one is provisioned.
func TestARecreatedNameLetsTheEarlierClusterGo(t *testing.T) {
	fresh := newCluster()
	fresh.UID = "u2"
	fresh.Finalizers = []string{v1alpha1.ClusterFinalizer}
	f := newFixture(t, fresh)
	f.ctrl.onDelete(newCluster()) // u1, seen deleted
	if _, err := f.ctrl.Reconcile(context.Background(), "acme/prod"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.driver.deleted, []string{"acme/prod/u1"}) {
		t.Errorf("deletions %v, want the earlier UID's only", f.driver.deleted)
	}
	if got := f.sync(t, "acme", "prod"); got.Status.Phase != v1alpha1.ClusterRunning {
		t.Errorf("the new cluster: %s", got.Status.Phase)
	}
}

// TestSweepQuarantinesOnlyWhatNothingAccountsFor.
func TestSweepQuarantinesOnlyWhatNothingAccountsFor(t *testing.T) {
	accounted := newCluster()
	f := newFixture(t, accounted)
	f.driver.held = []provisioner.Held{
		{Namespace: "acme", Name: "prod", UID: "u1"},                // its Cluster exists
		{Namespace: "acme", Name: "prod-old", UID: "u0"},            // no Cluster: quarantined
		{Namespace: "acme", Name: "busy", UID: "u2", Running: true}, // no Cluster but running: left alone
		{Namespace: "other", Name: "prod", UID: "u1"},               // same name and UID, other namespace
		{Namespace: "acme", Name: "prod", UID: "u9"},                // the name's Cluster has another UID
		{Namespace: "acme", Name: "pending-delete", UID: "u3"},      // a proven deletion is on its way
		{Namespace: "acme", Name: "recreated", UID: "u4"},           // a deletion of another UID of that name is
	}
	f.ctrl.deleted["acme/pending-delete"] = types.UID("u3")
	f.ctrl.deleted["acme/recreated"] = types.UID("u5")
	f.ctrl.sweep(context.Background())
	want := []string{"acme/prod-old/u0", "other/prod/u1", "acme/prod/u9", "acme/recreated/u4"}
	if !slices.Equal(f.driver.quarantined, want) {
		t.Errorf("quarantined %v, want %v", f.driver.quarantined, want)
	}
	var events []string
	for len(f.recorder.Events) > 0 {
		events = append(events, <-f.recorder.Events)
	}
	if n := countPrefix(events, "Warning Quarantined"); n != 4 {
		t.Errorf("%d Quarantined events, want 4: %v", n, events)
	}
	if n := countPrefix(events, "Warning Unaccounted"); n != 1 {
		t.Errorf("%d Unaccounted events, want 1: %v", n, events)
	}
	// Reported once per run, not every sweep.
	f.driver.quarantined = nil
	f.driver.held = f.driver.held[2:3]
	f.ctrl.sweep(context.Background())
	if len(f.recorder.Events) != 0 {
		t.Errorf("a running unaccounted control plane was reported again")
	}
}

func countPrefix(events []string, prefix string) int {
	n := 0
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestAPermanentFailureIsReported(t *testing.T) {
	c := newCluster()
	c.Finalizers = []string{v1alpha1.ClusterFinalizer}
	f := newFixture(t, c)
	f.driver.obs, f.driver.ensureErr = nil, &provisioner.PermanentError{Err: errors.New("no binaries: run hack/kube-binaries.sh")}
	_, err := f.ctrl.Reconcile(context.Background(), "acme/prod")
	var permanent *provisioner.PermanentError
	if !errors.As(err, &permanent) {
		t.Errorf("error %v, want the permanent error for the runtime's slow retry", err)
	}
	got := f.sync(t, "acme", "prod")
	if got.Status.Phase != v1alpha1.ClusterFailed || f.bootstraps != 0 {
		t.Errorf("phase %s, bootstraps %d", got.Status.Phase, f.bootstraps)
	}
	if ev := <-f.recorder.Events; !strings.Contains(ev, "ProvisioningFailed") || !strings.Contains(ev, "hack/kube-binaries.sh") {
		t.Errorf("event %q", ev)
	}
}

// How soon a cluster is looked at again: quickly while it first comes up (the tenant
// waits for it), every 2 s while a running one is unwell or updating (a surge moves on at
// each look) or one never came up within firstStartWithin, every 15 s once Ready.
func TestNextLook(t *testing.T) {
	ctx := context.Background()
	down := healthy()
	down.Components[provisioner.APIServer] = provisioner.Health{Message: "connection refused"}
	updating := healthy()
	updating.Updating = true
	for name, c := range map[string]struct {
		obs     *provisioner.Observation
		phase   v1alpha1.ClusterPhase
		created time.Duration // ago
		want    time.Duration
	}{
		"coming up":                   {down, v1alpha1.ClusterProvisioning, time.Second, pollFirstStart},
		"not up after long":           {down, v1alpha1.ClusterProvisioning, 3 * time.Minute, pollUnready},
		"running, unwell":             {down, v1alpha1.ClusterRunning, time.Hour, pollUnready},
		"running, a change rolls out": {updating, v1alpha1.ClusterRunning, time.Hour, pollUnready},
		"running":                     {healthy(), v1alpha1.ClusterRunning, time.Hour, pollReady},
	} {
		t.Run(name, func(t *testing.T) {
			cl := newCluster()
			cl.Finalizers = []string{v1alpha1.ClusterFinalizer}
			cl.CreationTimestamp = metav1.NewTime(time.Now().Add(-c.created))
			cl.Status.Phase = c.phase
			meta.SetStatusCondition(&cl.Status.Conditions, metav1.Condition{Type: v1alpha1.ClusterConditionDefaultsReady, Status: metav1.ConditionTrue, Reason: "Seen"})
			f := newFixture(t, cl)
			f.driver.obs = c.obs
			after, err := f.ctrl.Reconcile(ctx, "acme/prod")
			if err != nil {
				t.Fatal(err)
			}
			if after != c.want {
				t.Errorf("next look in %s, want %s", after, c.want)
			}
		})
	}
}
