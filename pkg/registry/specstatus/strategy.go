// Package specstatus holds the registry mechanics every kind of the group shares: an
// object whose spec belongs to its owner and whose status belongs to the controllers.
// The main resource ignores writes to status, the status subresource ignores writes to
// spec, and metadata.generation counts spec changes.
package specstatus

import (
	"context"
	"fmt"
	"reflect"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/ucloudstack/containerservice/pkg/apis/containerservice/v1alpha1"
)

// Object is an internal API type with Spec and Status fields.
type Object interface {
	runtime.Object
	metav1.Object
}

// Kind describes one kind to the shared strategies.
type Kind[T Object] struct {
	// Validate checks an object being created.
	Validate func(obj T) field.ErrorList
	// ValidateUpdate checks a change made through the main resource.
	ValidateUpdate func(obj, old T) field.ErrorList
	// ValidateStatusUpdate checks a change made through the status subresource.
	ValidateStatusUpdate func(obj, old T) field.ErrorList
	// Guard, if set, checks changes that depend on who makes them, through the main
	// resource and the status subresource alike.
	Guard func(ctx context.Context, obj, old T) field.ErrorList
	// References, if set, checks what depends on other objects (that a referenced object
	// exists, that no other object claims the same thing), on create (old is nil) and on
	// changes through the main resource.
	References func(ctx context.Context, obj, old T) field.ErrorList
	// InitialStatus, if set, is the status of a newly created object (its first phase),
	// written over whatever status the client sent.
	InitialStatus func(obj T)
	// Default, if set, fills in what needs the request or the final name (for example
	// the creating user), after name generation and before validation.
	Default func(ctx context.Context, obj T)
	// Fields, if set, returns the kind's selectable fields besides metadata.
	Fields func(obj T) fields.Set
}

// Strategy is the create, update and delete strategy of a kind's main resource.
type Strategy[T Object] struct {
	runtime.ObjectTyper
	names.NameGenerator
	kind Kind[T]
}

// NewStrategy returns the main-resource strategy of a kind.
func NewStrategy[T Object](typer runtime.ObjectTyper, kind Kind[T]) Strategy[T] {
	return Strategy[T]{ObjectTyper: typer, NameGenerator: names.SimpleNameGenerator, kind: kind}
}

// NamespaceScoped is true: every kind lives in a tenant's namespace.
func (Strategy[T]) NamespaceScoped() bool { return true }

// PrepareForCreate replaces any status the client sent with the initial one and starts
// the generation at 1.
func (s Strategy[T]) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	o := obj.(T)
	status := reflect.ValueOf(o).Elem().FieldByName("Status")
	status.Set(reflect.Zero(status.Type()))
	if s.kind.InitialStatus != nil {
		s.kind.InitialStatus(o)
	}
	o.SetGeneration(1)
	if s.kind.Default != nil {
		s.kind.Default(ctx, o)
	}
}

// PrepareForUpdate keeps the stored status and bumps the generation when the spec changed.
func (Strategy[T]) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	n, o := obj.(T), old.(T)
	copyField(n, o, "Status")
	n.SetGeneration(o.GetGeneration())
	if !apiequality.Semantic.DeepEqual(fieldOf(n, "Spec"), fieldOf(o, "Spec")) {
		n.SetGeneration(o.GetGeneration() + 1)
	}
}

// Validate checks an object being created.
func (s Strategy[T]) Validate(ctx context.Context, obj runtime.Object) field.ErrorList {
	errs := s.kind.Validate(obj.(T))
	if len(errs) == 0 && s.kind.References != nil {
		var none T
		errs = s.kind.References(ctx, obj.(T), none)
	}
	return errs
}

// ValidateUpdate checks a change made through the main resource.
func (s Strategy[T]) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := append(s.kind.ValidateUpdate(obj.(T), old.(T)), s.guard(ctx, obj, old)...)
	// Lookups are for what the spec says: a metadata-only change (a finalizer removed,
	// a label) must go through even when a referenced object is gone.
	if len(errs) == 0 && s.kind.References != nil && !apiequality.Semantic.DeepEqual(fieldOf(obj.(T), "Spec"), fieldOf(old.(T), "Spec")) {
		errs = s.kind.References(ctx, obj.(T), old.(T))
	}
	return errs
}

func (s Strategy[T]) guard(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	if s.kind.Guard == nil {
		return nil
	}
	return s.kind.Guard(ctx, obj.(T), old.(T))
}

// WarningsOnCreate returns no warnings.
func (Strategy[T]) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

// WarningsOnUpdate returns no warnings.
func (Strategy[T]) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// AllowCreateOnUpdate is false: objects are created with POST (or server-side apply).
func (Strategy[T]) AllowCreateOnUpdate(context.Context) bool { return false }

// AllowUnconditionalUpdate lets `kubectl replace` update without a resourceVersion.
func (Strategy[T]) AllowUnconditionalUpdate(context.Context) bool { return true }

// Canonicalize does nothing: objects are stored as validated.
func (Strategy[T]) Canonicalize(runtime.Object) {}

// GetResetFields tells server-side apply that the main resource never sets status.
func (Strategy[T]) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return resetFields("status")
}

// StatusStrategy is the update strategy of a kind's status subresource.
type StatusStrategy[T Object] struct {
	Strategy[T]
}

// NewStatusStrategy returns the status-subresource strategy of a kind.
func NewStatusStrategy[T Object](s Strategy[T]) StatusStrategy[T] {
	return StatusStrategy[T]{Strategy: s}
}

// PrepareForUpdate keeps the stored spec and generation: status writers report, they do not ask.
func (StatusStrategy[T]) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	n, o := obj.(T), old.(T)
	copyField(n, o, "Spec")
	n.SetGeneration(o.GetGeneration())
}

// ValidateUpdate checks what the status writer reports.
func (s StatusStrategy[T]) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	return append(s.kind.ValidateStatusUpdate(obj.(T), old.(T)), s.guard(ctx, obj, old)...)
}

// GetResetFields tells server-side apply that the status subresource never sets spec.
func (StatusStrategy[T]) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return resetFields("spec")
}

// GetAttrs returns the labels and selectable fields of an object.
func (s Strategy[T]) GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	o, ok := obj.(T)
	if !ok {
		var want T
		return nil, nil, fmt.Errorf("object is a %T, not a %T", obj, want)
	}
	set := fields.Set{"metadata.name": o.GetName(), "metadata.namespace": o.GetNamespace()}
	if s.kind.Fields != nil {
		set = generic.MergeFieldsSets(set, s.kind.Fields(o))
	}
	return o.GetLabels(), set, nil
}

// Predicate matches objects against label and field selectors in lists and watches.
func (s Strategy[T]) Predicate(label labels.Selector, fld fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: fld, GetAttrs: s.GetAttrs}
}

func resetFields(path string) map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(v1alpha1.SchemeGroupVersion.String()): fieldpath.NewSet(fieldpath.MakePathOrDie(path)),
	}
}

func fieldOf(obj Object, name string) any {
	return reflect.ValueOf(obj).Elem().FieldByName(name).Interface()
}

func copyField(dst, src Object, name string) {
	reflect.ValueOf(dst).Elem().FieldByName(name).Set(reflect.ValueOf(src).Elem().FieldByName(name))
}
