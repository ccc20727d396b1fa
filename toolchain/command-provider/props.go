package main

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

// Property keys shared by both resource types.
const (
	keyCreate      = "create"
	keyUpdate      = "update"
	keyDelete      = "delete"
	keyEnvironment = "environment"
	keyStdin       = "stdin"
	keyTriggers    = "triggers"
	keyAddPrevious = "addPreviousOutputInEnv"
	keyLogging     = "logging"
	keyDir         = "dir"
	keyInterpreter = "interpreter"
	keyConnection  = "connection"
	keyStdout      = "stdout"
	keyStderr      = "stderr"
)

// outputOnlyKeys are state properties that are not inputs; Diff ignores them.
var outputOnlyKeys = map[resource.PropertyKey]bool{
	keyStdout: true, keyStderr: true, "assets": true, "archive": true,
}

// rpcOptions keeps secrets and unknowns intact across the gRPC boundary so
// that secret inputs stay secret in the state the engine records.
func rpcOptions(label string) plugin.MarshalOptions {
	return plugin.MarshalOptions{
		Label:        label,
		KeepUnknowns: true,
		KeepSecrets:  true,
		SkipNulls:    true,
	}
}

func unmarshal(s *structpb.Struct, label string) (resource.PropertyMap, error) {
	m, err := plugin.UnmarshalProperties(s, rpcOptions(label))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	if m == nil {
		m = resource.PropertyMap{}
	}
	return m, nil
}

func marshal(m resource.PropertyMap, label string) (*structpb.Struct, error) {
	s, err := plugin.MarshalProperties(m, rpcOptions(label))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return s, nil
}

// unwrap strips any secret wrappers and reports whether there was one.
func unwrap(v resource.PropertyValue) (resource.PropertyValue, bool) {
	secret := false
	for v.IsSecret() {
		secret = true
		v = v.SecretValue().Element
	}
	return v, secret
}

// present reports whether key holds a non-null value.
func present(m resource.PropertyMap, key resource.PropertyKey) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	v, _ = unwrap(v)
	return !v.IsNull()
}

// inputsOf strips output-only keys from a state map.
func inputsOf(state resource.PropertyMap) resource.PropertyMap {
	in := resource.PropertyMap{}
	for k, v := range state {
		if !outputOnlyKeys[k] {
			in[k] = v
		}
	}
	return in
}

// secretStrings collects every string nested under a secret so that it can
// be redacted from logs and error messages.
func secretStrings(v resource.PropertyValue, underSecret bool, out *[]string) {
	switch {
	case v.IsSecret():
		secretStrings(v.SecretValue().Element, true, out)
	case v.IsString():
		if underSecret {
			*out = append(*out, v.StringValue())
		}
	case v.IsArray():
		for _, e := range v.ArrayValue() {
			secretStrings(e, underSecret, out)
		}
	case v.IsObject():
		for _, e := range v.ObjectValue() {
			secretStrings(e, underSecret, out)
		}
	}
}
