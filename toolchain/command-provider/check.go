package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// checkInputs validates news and returns them with schema defaults applied.
// Secret and unknown values are preserved as they are.
func checkInputs(typ string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	out := news.Copy()
	if !present(out, keyAddPrevious) && !isUnknown(out, keyAddPrevious) {
		out[keyAddPrevious] = resource.NewProperty(true)
	}
	if typ == remoteCommandType {
		if v, ok := out[keyConnection]; ok {
			out[keyConnection] = withConnectionDefaults(v)
		}
	}

	_, errs := decodeArgs(typ, out, true)
	failures := make([]*pulumirpc.CheckFailure, 0, len(errs))
	for _, e := range errs {
		failures = append(failures, &pulumirpc.CheckFailure{Property: e.Property, Reason: e.Reason})
	}
	return out, failures
}

// withConnectionDefaults fills the defaults of a (possibly secret)
// connection object, recursing into its proxy.
func withConnectionDefaults(v resource.PropertyValue) resource.PropertyValue {
	inner, secret := unwrap(v)
	if !inner.IsObject() {
		return v
	}
	m := inner.ObjectValue().Copy()
	defaults := map[resource.PropertyKey]resource.PropertyValue{
		"port":           resource.NewProperty(float64(defaultPort)),
		"user":           resource.NewProperty(defaultUser),
		"dialErrorLimit": resource.NewProperty(float64(defaultDialErrorLimit)),
		"perDialTimeout": resource.NewProperty(float64(defaultPerDialTimeout)),
	}
	for k, def := range defaults {
		if !present(m, k) && !isUnknown(m, k) {
			m[k] = def
		}
	}
	if p, ok := m["proxy"]; ok {
		m["proxy"] = withConnectionDefaults(p)
	}
	out := resource.NewProperty(m)
	if secret {
		out = resource.MakeSecret(out)
	}
	return out
}
