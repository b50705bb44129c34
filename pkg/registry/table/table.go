// Package table renders objects as kubectl tables: a Name column, the kind's own columns
// and an Age column, for single objects and lists alike.
package table

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Column is one column of a kind's table.
type Column[T any] struct {
	// Name is the column header.
	Name string
	// Type is the OpenAPI type of the cells: string, integer, number or boolean.
	Type string
	// Description says what the column shows.
	Description string
	// Wide columns are shown only with -o wide.
	Wide bool
	// Cell returns the column's value for one object.
	Cell func(obj T) any
}

// Convertor renders objects of type T with the given columns.
type Convertor[T runtime.Object] struct {
	columns []Column[T]
	defs    []metav1.TableColumnDefinition
}

var _ rest.TableConvertor = Convertor[runtime.Object]{}

// New returns a convertor with Name first, then columns, then Age.
func New[T runtime.Object](columns ...Column[T]) Convertor[T] {
	objectMeta := metav1.ObjectMeta{}.SwaggerDoc()
	defs := []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name", Description: objectMeta["name"]}}
	for _, c := range columns {
		d := metav1.TableColumnDefinition{Name: c.Name, Type: c.Type, Description: c.Description}
		if c.Wide {
			d.Priority = 1
		}
		defs = append(defs, d)
	}
	defs = append(defs, metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMeta["creationTimestamp"]})
	return Convertor[T]{columns: columns, defs: defs}
}

// ConvertToTable renders an object or a list of objects.
func (c Convertor[T]) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{}
	if opts, ok := tableOptions.(*metav1.TableOptions); !ok || !opts.NoHeaders {
		t.ColumnDefinitions = c.defs
	}
	if m, err := meta.ListAccessor(object); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
		t.Continue = m.GetContinue()
		t.RemainingItemCount = m.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(object); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
	}

	var rowErr error
	appendRow := func(obj runtime.Object) error {
		o, ok := obj.(T)
		if !ok {
			var want T
			return fmt.Errorf("cannot render a %T in a table of %T", obj, want)
		}
		m, err := meta.Accessor(o)
		if err != nil {
			return err
		}
		cells := make([]any, 0, len(c.defs))
		cells = append(cells, m.GetName())
		for _, col := range c.columns {
			cells = append(cells, col.Cell(o))
		}
		cells = append(cells, age(m.GetCreationTimestamp()))
		t.Rows = append(t.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}})
		return nil
	}
	if meta.IsListType(object) {
		rowErr = meta.EachListItem(object, appendRow)
	} else {
		rowErr = appendRow(object)
	}
	if rowErr != nil {
		return nil, rowErr
	}
	return t, nil
}

func age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}
