package main

import (
	"fmt"
	"math"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// fieldError describes an invalid input property.
type fieldError struct {
	Property string
	Reason   string
}

func (e fieldError) Error() string { return e.Property + ": " + e.Reason }

// decoder reads typed values out of a PropertyMap, unwrapping secrets and
// collecting one fieldError per bad property. With allowUnknown (Check during
// preview) unknown values decode as zero values instead of failing.
type decoder struct {
	prefix       string
	allowUnknown bool
	errs         []fieldError
}

func (d *decoder) fail(key resource.PropertyKey, format string, args ...any) {
	d.errs = append(d.errs, fieldError{Property: d.prefix + string(key), Reason: fmt.Sprintf(format, args...)})
}

// value returns the unwrapped value of key and false when it is absent,
// null or (tolerated) unknown.
func (d *decoder) value(m resource.PropertyMap, key resource.PropertyKey) (resource.PropertyValue, bool) {
	v, ok := m[key]
	if !ok {
		return v, false
	}
	v, _ = unwrap(v)
	if v.IsNull() {
		return v, false
	}
	if v.ContainsUnknowns() {
		if !d.allowUnknown {
			d.fail(key, "value is unknown")
		}
		return v, false
	}
	return v, true
}

func (d *decoder) str(m resource.PropertyMap, key resource.PropertyKey) string {
	v, ok := d.value(m, key)
	if !ok {
		return ""
	}
	if !v.IsString() {
		d.fail(key, "expected a string, got %s", v.TypeString())
		return ""
	}
	return v.StringValue()
}

func (d *decoder) boolean(m resource.PropertyMap, key resource.PropertyKey, def bool) bool {
	v, ok := d.value(m, key)
	if !ok {
		return def
	}
	if !v.IsBool() {
		d.fail(key, "expected a boolean, got %s", v.TypeString())
		return def
	}
	return v.BoolValue()
}

func (d *decoder) integer(m resource.PropertyMap, key resource.PropertyKey, def int) int {
	v, ok := d.value(m, key)
	if !ok {
		return def
	}
	if !v.IsNumber() || v.NumberValue() != math.Trunc(v.NumberValue()) {
		d.fail(key, "expected an integer, got %s", v.TypeString())
		return def
	}
	return int(v.NumberValue())
}

func (d *decoder) strList(m resource.PropertyMap, key resource.PropertyKey) []string {
	v, ok := d.value(m, key)
	if !ok {
		return nil
	}
	if !v.IsArray() {
		d.fail(key, "expected a list of strings, got %s", v.TypeString())
		return nil
	}
	out := make([]string, 0, len(v.ArrayValue()))
	for i, e := range v.ArrayValue() {
		e, _ = unwrap(e)
		if !e.IsString() {
			d.fail(key, "element %d: expected a string, got %s", i, e.TypeString())
			continue
		}
		out = append(out, e.StringValue())
	}
	return out
}

func (d *decoder) strMap(m resource.PropertyMap, key resource.PropertyKey) map[string]string {
	v, ok := d.value(m, key)
	if !ok {
		return nil
	}
	if !v.IsObject() {
		d.fail(key, "expected a map of strings, got %s", v.TypeString())
		return nil
	}
	out := map[string]string{}
	for k, e := range v.ObjectValue() {
		e, _ = unwrap(e)
		if !e.IsString() {
			d.fail(key, "key %q: expected a string, got %s", k, e.TypeString())
			continue
		}
		out[string(k)] = e.StringValue()
	}
	return out
}

// object returns the nested map under key, or nil when absent/unknown.
func (d *decoder) object(m resource.PropertyMap, key resource.PropertyKey) resource.PropertyMap {
	v, ok := d.value(m, key)
	if !ok {
		return nil
	}
	if !v.IsObject() {
		d.fail(key, "expected an object, got %s", v.TypeString())
		return nil
	}
	return v.ObjectValue()
}

// isUnknown reports whether key holds an unknown value (possibly secret).
func isUnknown(m resource.PropertyMap, key resource.PropertyKey) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	v, _ = unwrap(v)
	return v.IsComputed() || v.IsOutput() && !v.OutputValue().Known
}
