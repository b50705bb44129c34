package project

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// reconcileProject brings one project (key: namespace/name) to what it asks for.
func (c *Controller) reconcileProject(ctx context.Context, key string) (time.Duration, error) {
	began := time.Now()
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cached, err := c.projects.Projects(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil // gone: its finalizer made sure it was cleaned up first
	}
	if err != nil {
		return 0, err
	}
	p := cached.DeepCopy()
	if p.DeletionTimestamp != nil {
		return c.finalize(ctx, p)
	}
	if !slices.Contains(p.Finalizers, v1alpha1.ProjectFinalizer) {
		p.Finalizers = append(p.Finalizers, v1alpha1.ProjectFinalizer)
		updated, err := c.client.ContainerserviceV1alpha1().Projects(ns).Update(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			return 0, fmt.Errorf("add the finalizer to %s: %w", key, err)
		}
		p = updated
	}
	if err := c.applyHostAccess(ctx, p); err != nil {
		return 0, err
	}

	status := p.Status.DeepCopy()
	next := make([]v1alpha1.ProjectClusterStatus, len(p.Spec.Clusters), len(p.Spec.Clusters)+len(status.Clusters))
	retries := make([]time.Duration, len(p.Spec.Clusters))
	// Each cluster on its own: one slow or unwell cluster does not hold up the others.
	var wg sync.WaitGroup
	for i, name := range p.Spec.Clusters {
		s := v1alpha1.ProjectClusterStatus{Name: name, Namespace: p.Spec.Namespace, Phase: v1alpha1.ProjectPending}
		if old := clusterStatus(status, name); old != nil {
			s.ObservedGeneration = old.ObservedGeneration
		}
		retries[i] = resync
		cl, err := c.clusters.Clusters(ns).Get(name)
		reachable := false
		switch {
		case apierrors.IsNotFound(err):
			s.Phase, s.Message = v1alpha1.ProjectFailed, "no Cluster "+name+" in namespace "+ns
		case err != nil:
			s.Message, retries[i] = err.Error(), placeRetry
		case !running(cl):
			s.Message = fmt.Sprintf("waiting for cluster %s (%s)", name, cl.Status.Phase)
			retries[i] = waitForCluster
		default:
			reachable = true
		}
		next[i] = s
		status.Retained = slices.DeleteFunc(status.Retained, func(r v1alpha1.ProjectRetainedNamespace) bool { return r.Cluster == name })
		if !reachable {
			continue
		}
		wg.Go(func() {
			if err := c.placeIn(ctx, cl, p); err != nil {
				next[i].Message = err.Error()
				retries[i] = c.placeFailed(p.UID, name)
				klog.ErrorS(err, "Cannot place the project", "project", klog.KObj(p), "cluster", name, "retryIn", retries[i])
				return
			}
			c.placed(p.UID, name)
			next[i].Phase, next[i].ObservedGeneration = v1alpha1.ProjectReady, p.Generation
		})
	}
	wg.Wait()
	retry := slices.Min(append(retries, resync))
	// Clusters the project left: remove what it had there.
	for _, old := range status.Clusters {
		if slices.Contains(p.Spec.Clusters, old.Name) {
			continue
		}
		kept, done, err := c.leave(ctx, p, old.Name, old.Namespace)
		if err != nil || !done {
			if err != nil {
				klog.ErrorS(err, "Cannot remove the project from a cluster it left", "project", klog.KObj(p), "cluster", old.Name)
			}
			old.Message = "leaving: removing the project's bindings"
			next = append(next, old) // tried again next time
			retry = min(retry, waitForCluster)
			continue
		}
		if kept {
			status.Retained = append(status.Retained, v1alpha1.ProjectRetainedNamespace{Cluster: old.Name, Namespace: old.Namespace})
			c.recorder.Eventf(p, corev1.EventTypeNormal, "NamespaceRetained", "left cluster %s; kept namespace %s and its workloads (namespacePolicy Retain)", old.Name, old.Namespace)
		}
	}
	status.Clusters = next
	status.Phase, status.ObservedGeneration = overall(next), p.Generation
	ready := metav1.Condition{Type: v1alpha1.ProjectConditionReady, Status: metav1.ConditionTrue, Reason: "Placed",
		Message: "the namespace and bindings are in place in every cluster", ObservedGeneration: p.Generation}
	if status.Phase != v1alpha1.ProjectReady {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, string(status.Phase), notReadyMessage(next)
	}
	meta.SetStatusCondition(&status.Conditions, ready)
	if !apiequality.Semantic.DeepEqual(status, &p.Status) {
		klog.InfoS("Project status", "project", klog.KObj(p), "generation", p.Generation, "phase", status.Phase, "took", time.Since(began))
		p.Status = *status
		if _, err := c.client.ContainerserviceV1alpha1().Projects(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return 0, fmt.Errorf("update the status of %s: %w", key, err)
		}
	}
	return retry, nil
}

// placeIn puts the project into one running cluster, then the cluster's identities.
func (c *Controller) placeIn(ctx context.Context, cl *v1alpha1.Cluster, p *v1alpha1.Project) error {
	client, err := c.clientFor(ctx, cl)
	if err != nil {
		return err
	}
	live := func(name string) bool {
		// A project being deleted still holds its namespace until it has left.
		_, err := c.projects.Projects(p.Namespace).Get(name)
		return err == nil
	}
	if err := place(ctx, client, p, live); err != nil {
		return err
	}
	return c.syncIdentities(ctx, cl)
}

// leave removes the project from a cluster. done is false while that cannot be done yet
// (the cluster exists but is not running); a cluster that is gone took everything with it.
func (c *Controller) leave(ctx context.Context, p *v1alpha1.Project, cluster, namespace string) (kept, done bool, err error) {
	cl, err := c.clusters.Clusters(p.Namespace).Get(cluster)
	if apierrors.IsNotFound(err) {
		return false, true, nil
	}
	if err != nil {
		return false, false, err
	}
	if cl.DeletionTimestamp != nil {
		return false, true, nil
	}
	if !running(cl) {
		return false, false, nil
	}
	client, err := c.clientFor(ctx, cl)
	if err != nil {
		return false, false, err
	}
	if namespace == "" {
		namespace = p.Spec.Namespace
	}
	if kept, err = unplace(ctx, client, p, namespace); err != nil {
		return false, false, err
	}
	return kept, true, c.syncIdentities(ctx, cl)
}

// finalize removes a deleted project from every cluster it spanned and from the host,
// then lets it go.
func (c *Controller) finalize(ctx context.Context, p *v1alpha1.Project) (time.Duration, error) {
	if !slices.Contains(p.Finalizers, v1alpha1.ProjectFinalizer) {
		return 0, nil
	}
	clusters := map[string]string{}
	for _, name := range p.Spec.Clusters {
		clusters[name] = p.Spec.Namespace
	}
	for _, s := range p.Status.Clusters {
		clusters[s.Name] = s.Namespace
	}
	for name, namespace := range clusters {
		kept, done, err := c.leave(ctx, p, name, namespace)
		if err != nil {
			return 0, err
		}
		if !done {
			return waitForCluster, nil
		}
		if kept {
			c.recorder.Eventf(p, corev1.EventTypeNormal, "NamespaceRetained", "deleted; kept namespace %s and its workloads in cluster %s (namespacePolicy Retain)", namespace, name)
		}
	}
	if err := c.removeHostAccess(ctx, p); err != nil {
		return 0, err
	}
	p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == v1alpha1.ProjectFinalizer })
	if _, err := c.client.ContainerserviceV1alpha1().Projects(p.Namespace).Update(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("remove the finalizer of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return 0, nil
}

func clusterStatus(s *v1alpha1.ProjectStatus, name string) *v1alpha1.ProjectClusterStatus {
	for i := range s.Clusters {
		if s.Clusters[i].Name == name {
			return &s.Clusters[i]
		}
	}
	return nil
}

// overall is Ready when every cluster is, Failed when one failed, Pending otherwise.
func overall(clusters []v1alpha1.ProjectClusterStatus) v1alpha1.ProjectPhase {
	phase := v1alpha1.ProjectReady
	for _, s := range clusters {
		switch {
		case s.Phase == v1alpha1.ProjectFailed:
			return v1alpha1.ProjectFailed
		case s.Phase != v1alpha1.ProjectReady:
			phase = v1alpha1.ProjectPending
		}
	}
	return phase
}

func notReadyMessage(clusters []v1alpha1.ProjectClusterStatus) string {
	for _, s := range clusters {
		if s.Phase != v1alpha1.ProjectReady {
			return s.Name + ": " + s.Message
		}
	}
	return ""
}
