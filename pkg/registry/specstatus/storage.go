package specstatus

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	cs "github.com/ucloudstack/containerservice/pkg/apis/containerservice"
)

// Category groups every kind of the API, so `kubectl get containerservice` lists them all.
const Category = "containerservice"

// Resource describes how one kind is served.
type Resource[T Object] struct {
	// Plural and Singular are the resource names (clusters, cluster).
	Plural, Singular string
	// ShortNames are the kubectl aliases of the resource.
	ShortNames []string
	// New and NewList allocate an empty object and list of the internal type.
	New, NewList func() runtime.Object
	// Table renders the resource for kubectl get.
	Table rest.TableConvertor
	// SerialWrites admits one create or update of the kind at a time, for a kind whose
	// admission compares an object with the others of its kind (one Plugin of a type per
	// cluster, one Project per namespace): two written at once would otherwise each be
	// checked before the other was stored, and both admitted. The lock is the process's:
	// it holds where one server serves the API (the local driver's, make run); API-only
	// replicas behind one Service (artifacts/deploy) can still admit two at once, one each.
	SerialWrites bool
}

// REST serves a kind's main resource.
type REST struct {
	*genericregistry.Store
	shortNames []string
	// serial, if set, is held across a create or an update (Resource.SerialWrites).
	serial *sync.Mutex
}

// Create stores a new object, one at a time when the kind's writes are serial.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	if r.serial != nil {
		r.serial.Lock()
		defer r.serial.Unlock()
	}
	return r.Store.Create(ctx, obj, createValidation, options)
}

// Update changes an object, one at a time when the kind's writes are serial.
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	if r.serial != nil {
		r.serial.Lock()
		defer r.serial.Unlock()
	}
	return r.Store.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, options)
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
)

// ShortNames returns the kubectl aliases of the resource.
func (r *REST) ShortNames() []string { return r.shortNames }

// Categories puts the resource in the containerservice category.
func (r *REST) Categories() []string { return []string{Category} }

// StatusREST serves a kind's status subresource: get, update and patch of status only.
type StatusREST struct {
	store *genericregistry.Store
}

var (
	_ rest.Patcher             = &StatusREST{}
	_ rest.ResetFieldsStrategy = &StatusREST{}
	_ rest.TableConvertor      = &StatusREST{}
)

// New returns an empty object.
func (r *StatusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main resource owns the storage and releases it.
func (r *StatusREST) Destroy() {}

// Get returns the object, so that patches of status see the whole of it.
func (r *StatusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

// Update changes the status of an object; it never creates one.
func (r *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// GetResetFields returns the fields server-side apply must not set through status.
func (r *StatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

// ConvertToTable renders the object as the main resource does.
func (r *StatusREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

// Storage is a kind's main resource and its status subresource, which share one store.
type Storage struct {
	Main   *REST
	Status *StatusREST
}

// NewStorage builds the main resource and its status subresource over the generic
// etcd store.
func NewStorage[T Object](typer runtime.ObjectTyper, optsGetter generic.RESTOptionsGetter, kind Kind[T], res Resource[T]) (Storage, error) {
	strategy := NewStrategy(typer, kind)
	statusStrategy := NewStatusStrategy(strategy)
	store := &genericregistry.Store{
		NewFunc:                   res.New,
		NewListFunc:               res.NewList,
		PredicateFunc:             strategy.Predicate,
		DefaultQualifiedResource:  cs.Resource(res.Plural),
		SingularQualifiedResource: cs.Resource(res.Singular),

		CreateStrategy:      strategy,
		UpdateStrategy:      strategy,
		DeleteStrategy:      strategy,
		ResetFieldsStrategy: strategy,

		TableConvertor: res.Table,
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: strategy.GetAttrs}); err != nil {
		return Storage{}, fmt.Errorf("complete storage for %s: %w", res.Plural, err)
	}
	statusStore := *store
	statusStore.UpdateStrategy = statusStrategy
	statusStore.ResetFieldsStrategy = statusStrategy
	main := &REST{Store: store, shortNames: res.ShortNames}
	if res.SerialWrites {
		main.serial = &sync.Mutex{}
	}
	return Storage{Main: main, Status: &StatusREST{store: &statusStore}}, nil
}
