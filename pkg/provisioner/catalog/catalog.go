// Package catalog is the built-in catalog of add-ons a Plugin may name: for each type, its
// versions (semantic versions, newest last) and each version's typed settings, with their
// defaults and bounds. Admission checks a Plugin's spec.config against it, so a setting
// that is unknown, of the wrong type or out of range is refused with the field named
// (spec.config[key]) instead of failing later inside the user cluster.
package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"
)

// Kind is the type of a setting's value. Every value is written as a string in
// spec.config; its kind says how that string is read.
type Kind string

const (
	// String is any text up to MaxLength.
	String Kind = "string"
	// Int is a whole number between Min and Max.
	Int Kind = "int"
	// Bool is "true" or "false".
	Bool Kind = "bool"
	// Quantity is a Kubernetes quantity (10Gi, 500m) of at least Min units when Min is set.
	Quantity Kind = "quantity"
	// Duration is a Prometheus-style duration: a whole number and a unit of ms, s, m, h,
	// d, w or y (15d, 12h).
	Duration Kind = "duration"
	// Enum is one of Values.
	Enum Kind = "enum"
)

// Setting is one typed setting of an add-on version.
type Setting struct {
	// Name is the key in spec.config.
	Name string
	// Kind is how the value is read.
	Kind Kind
	// Default is the value used when spec.config does not set it.
	Default string
	// Description says what the setting does (README and error messages).
	Description string
	// Min and Max bound an Int (and Min a Quantity); nil means no bound.
	Min, Max *int64
	// Values are the choices of an Enum.
	Values []string
	// MaxLength bounds a String; 0 means 253.
	MaxLength int
	// Pattern, when set, is what a String must match in full.
	Pattern *regexp.Regexp
}

// Version is one version of an add-on.
type Version struct {
	// Version is a semantic version without a leading v (1.2.0).
	Version string
	// Settings are the version's typed settings.
	Settings []Setting
}

// Entry is one add-on of the catalog.
type Entry struct {
	// Type is the name a Plugin's spec.type gives.
	Type string
	// Description says what the add-on puts into a cluster.
	Description string
	// Versions are the add-on's versions, oldest first.
	Versions []Version
}

// Newest is the version a Plugin without spec.version runs.
func (e *Entry) Newest() *Version { return &e.Versions[len(e.Versions)-1] }

// Version returns the version of that name, or nil.
func (e *Entry) Version(v string) *Version {
	for i := range e.Versions {
		if e.Versions[i].Version == strings.TrimPrefix(v, "v") {
			return &e.Versions[i]
		}
	}
	return nil
}

// VersionNames lists the entry's versions, oldest first.
func (e *Entry) VersionNames() []string {
	names := make([]string, len(e.Versions))
	for i, v := range e.Versions {
		names[i] = v.Version
	}
	return names
}

// Lookup returns the entry of a type, or nil when the catalog has none.
func Lookup(typ string) *Entry {
	for i := range entries {
		if entries[i].Type == typ {
			return &entries[i]
		}
	}
	return nil
}

// Types lists every type of the catalog, in the catalog's order.
func Types() []string {
	types := make([]string, len(entries))
	for i, e := range entries {
		types[i] = e.Type
	}
	return types
}

// Entries returns the catalog (for documentation); callers must not change it.
func Entries() []Entry { return entries }

// Resolve returns the version a Plugin runs: the one it names, or the entry's newest.
func (e *Entry) Resolve(v string) (*Version, error) {
	if v == "" {
		return e.Newest(), nil
	}
	if found := e.Version(v); found != nil {
		return found, nil
	}
	return nil, fmt.Errorf("%s has no version %s (it has %s)", e.Type, v, strings.Join(e.VersionNames(), ", "))
}

// Values returns every setting of the version with the config's value or its default.
// config must have passed Validate.
func (v *Version) Values(config map[string]string) map[string]string {
	values := make(map[string]string, len(v.Settings))
	for _, s := range v.Settings {
		values[s.Name] = s.Default
		if given, ok := config[s.Name]; ok {
			values[s.Name] = given
		}
	}
	return values
}

// Validate checks config against the version's settings; fld is spec.config.
func (v *Version) Validate(config map[string]string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		i := slices.IndexFunc(v.Settings, func(s Setting) bool { return s.Name == k })
		if i < 0 {
			errs = append(errs, field.NotSupported(fld.Key(k), k, v.settingNames()))
			continue
		}
		if msg := v.Settings[i].check(config[k]); msg != "" {
			errs = append(errs, field.Invalid(fld.Key(k), config[k], msg))
		}
	}
	return errs
}

func (v *Version) settingNames() []string {
	names := make([]string, len(v.Settings))
	for i, s := range v.Settings {
		names[i] = s.Name
	}
	return names
}

var durationPattern = regexp.MustCompile(`^[1-9][0-9]{0,8}(ms|s|m|h|d|w|y)$`)

// check returns why value is not a valid value of the setting, or "".
func (s *Setting) check(value string) string {
	switch s.Kind {
	case String:
		limit := s.MaxLength
		if limit == 0 {
			limit = 253
		}
		if len(value) > limit {
			return fmt.Sprintf("must be at most %d characters", limit)
		}
		if s.Pattern != nil && !s.Pattern.MatchString(value) {
			return "must match " + s.Pattern.String()
		}
	case Int:
		n, err := strconv.ParseInt(value, 10, 64)
		switch {
		case err != nil:
			return "must be a whole number"
		case s.Min != nil && n < *s.Min:
			return fmt.Sprintf("must be at least %d", *s.Min)
		case s.Max != nil && n > *s.Max:
			return fmt.Sprintf("must be at most %d", *s.Max)
		}
	case Bool:
		if value != "true" && value != "false" {
			return `must be "true" or "false"`
		}
	case Quantity:
		q, err := resource.ParseQuantity(value)
		switch {
		case err != nil:
			return "must be a quantity such as 10Gi"
		case s.Min != nil && q.CmpInt64(*s.Min) < 0:
			return fmt.Sprintf("must be at least %s", resource.NewQuantity(*s.Min, resource.BinarySI))
		}
	case Duration:
		if !durationPattern.MatchString(value) {
			return "must be a whole number and a unit of ms, s, m, h, d, w or y, such as 15d"
		}
	case Enum:
		if !slices.Contains(s.Values, value) {
			return "must be one of " + strings.Join(s.Values, ", ")
		}
	}
	return ""
}

// validateCatalog checks the catalog itself: versions semantic, ascending and unique,
// settings unique with valid defaults and not named as a key of the render environment
// (Env). A test runs it, so a bad entry never ships.
func validateCatalog(entries []Entry) error {
	types := map[string]bool{}
	for _, e := range entries {
		if types[e.Type] {
			return fmt.Errorf("type %s twice", e.Type)
		}
		types[e.Type] = true
		if len(e.Versions) == 0 {
			return fmt.Errorf("%s has no version", e.Type)
		}
		var previous *version.Version
		for _, v := range e.Versions {
			parsed, err := version.ParseSemantic(v.Version)
			if err != nil {
				return fmt.Errorf("%s version %q: %w", e.Type, v.Version, err)
			}
			if previous != nil && !previous.LessThan(parsed) {
				return fmt.Errorf("%s versions are not ascending at %s", e.Type, v.Version)
			}
			previous = parsed
			names := map[string]bool{}
			for _, s := range v.Settings {
				if names[s.Name] {
					return fmt.Errorf("%s %s: setting %s twice", e.Type, v.Version, s.Name)
				}
				names[s.Name] = true
				if _, reserved := (Env{}).values()[s.Name]; reserved {
					return fmt.Errorf("%s %s: setting %s: the name is the render environment's (Env)", e.Type, v.Version, s.Name)
				}
				if msg := s.check(s.Default); msg != "" {
					return fmt.Errorf("%s %s: default of %s %q %s", e.Type, v.Version, s.Name, s.Default, msg)
				}
			}
		}
	}
	return nil
}
