package plugin

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

func labelled(ns, name, plugin, rv string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv}}
	if plugin != "" {
		m.Labels = map[string]string{v1alpha1.PluginLabel: plugin}
	}
	return m
}

// TestARelistReportsWhatWentWhileTheWatchWasDown: the watches keep no objects, yet an
// object deleted while a watch was down (seen before, missing from the relist) must be
// reported deleted, or its add-on is repaired only at the next full look.
func TestARelistReportsWhatWentWhileTheWatchWasDown(t *testing.T) {
	var got []string
	e := &events{seen: map[string]objectRef{}, handle: func(o objectRef, deleted bool) {
		what := "changed"
		if deleted {
			what = "deleted"
		}
		got = append(got, what+" "+o.namespace+"/"+o.name+" of "+o.plugin+" at "+o.resourceVersion)
	}}
	steps := []struct {
		do   func() error
		want []string
	}{
		{func() error {
			return e.Replace([]any{labelled("m", "a", "mon", "1"), labelled("m", "b", "mon", "2"), labelled("m", "other", "", "3")}, "3")
		}, []string{"changed m/a of mon at 1", "changed m/b of mon at 2"}},
		{func() error { return e.Update(labelled("m", "a", "mon", "4")) }, []string{"changed m/a of mon at 4"}},
		{func() error { return e.Add(labelled("", "c", "csi", "5")) }, []string{"changed /c of csi at 5"}},
		{func() error {
			return e.Delete(cache.DeletedFinalStateUnknown{Key: "/c", Obj: labelled("", "c", "csi", "5")})
		}, []string{"deleted /c of csi at 5"}},
		// The watch was down while m/b went and m/a changed.
		{func() error { return e.Replace([]any{labelled("m", "a", "mon", "7")}, "7") },
			[]string{"changed m/a of mon at 7", "deleted m/b of mon at 2"}},
		// Nothing left to report twice.
		{func() error { return e.Replace(nil, "8") }, []string{"deleted m/a of mon at 7"}},
		{func() error { return e.Replace(nil, "9") }, nil},
	}
	for i, s := range steps {
		got = nil
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, s.want) {
			t.Errorf("step %d: reported %q, want %q", i, got, s.want)
		}
	}
	if len(e.seen) != 0 {
		t.Errorf("still keeps %v after everything went", e.seen)
	}
}

// TestDeletedClustersAreForgottenInTime: the record of deleted clusters keeps each long
// enough to stop a late reconcile, and does not grow with every cluster ever deleted.
func TestDeletedClustersAreForgottenInTime(t *testing.T) {
	g := goneClusters{}
	start := time.Now()
	g.add("a", start)
	if !g.has("a") {
		t.Fatal("a deleted cluster is not remembered")
	}
	g.add("b", start.Add(goneFor/2))
	if !g.has("a") || !g.has("b") {
		t.Error("forgotten too soon")
	}
	g.add("c", start.Add(goneFor+time.Second))
	if g.has("a") || !g.has("b") || !g.has("c") || len(g) != 2 {
		t.Errorf("after %s: %v, want b and c only", goneFor, g)
	}
}
