package main

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func str(s string) resource.PropertyValue { return resource.NewProperty(s) }

func secret(v resource.PropertyValue) resource.PropertyValue { return resource.MakeSecret(v) }

func unknown() resource.PropertyValue { return resource.MakeComputed(str("")) }

func TestCheckLocalDefaults(t *testing.T) {
	out, failures := checkInputs(localCommandType, resource.PropertyMap{keyCreate: str("echo hi")})
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	if v := out[keyAddPrevious]; !v.IsBool() || !v.BoolValue() {
		t.Fatalf("addPreviousOutputInEnv default: got %v", v)
	}
	if _, ok := out[keyInterpreter]; ok {
		t.Fatalf("interpreter must not be added to the inputs")
	}
}

func TestCheckKeepsExplicitFalse(t *testing.T) {
	out, _ := checkInputs(localCommandType, resource.PropertyMap{keyAddPrevious: resource.NewProperty(false)})
	if out[keyAddPrevious].BoolValue() {
		t.Fatal("explicit false was overwritten")
	}
}

func TestCheckRemoteConnectionDefaultsStaySecret(t *testing.T) {
	conn := secret(resource.NewProperty(resource.PropertyMap{
		"host":       str("10.0.0.1"),
		"privateKey": str("KEY"),
	}))
	out, failures := checkInputs(remoteCommandType, resource.PropertyMap{keyConnection: conn})
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	c := out[keyConnection]
	if !c.IsSecret() {
		t.Fatal("connection lost its secretness")
	}
	m := c.SecretValue().Element.ObjectValue()
	want := map[resource.PropertyKey]any{"port": 22.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0}
	for k, v := range want {
		if m[k].V != v {
			t.Errorf("%s: got %v, want %v", k, m[k].V, v)
		}
	}
}

func TestCheckFailures(t *testing.T) {
	cases := []struct {
		name string
		typ  string
		in   resource.PropertyMap
		prop string
	}{
		{"bad logging", localCommandType, resource.PropertyMap{keyLogging: str("loud")}, "logging"},
		{"empty interpreter", localCommandType,
			resource.PropertyMap{keyInterpreter: resource.NewProperty([]resource.PropertyValue{})}, "interpreter"},
		{"create not a string", localCommandType, resource.PropertyMap{keyCreate: resource.NewProperty(1.0)}, "create"},
		{"missing connection", remoteCommandType, resource.PropertyMap{}, "connection"},
		{"missing host", remoteCommandType,
			resource.PropertyMap{keyConnection: resource.NewProperty(resource.PropertyMap{})}, "connection.host"},
		{"bad proxy port", remoteCommandType, resource.PropertyMap{keyConnection: resource.NewProperty(resource.PropertyMap{
			"host":  str("h"),
			"proxy": resource.NewProperty(resource.PropertyMap{"host": str("p"), "port": resource.NewProperty(0.5)}),
		})}, "connection.proxy.port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, failures := checkInputs(tc.typ, tc.in)
			for _, f := range failures {
				if f.Property == tc.prop {
					return
				}
			}
			t.Fatalf("want a failure on %q, got %v", tc.prop, failures)
		})
	}
}

func TestCheckToleratesUnknowns(t *testing.T) {
	for _, in := range []resource.PropertyMap{
		{keyConnection: unknown(), keyCreate: unknown()},
		{keyConnection: secret(unknown())},
		{keyConnection: resource.NewProperty(resource.PropertyMap{"host": unknown()})},
	} {
		if _, failures := checkInputs(remoteCommandType, in); len(failures) != 0 {
			t.Errorf("%v: unexpected failures %v", in, failures)
		}
	}
}

func TestDecodeRejectsUnknownOutsidePreview(t *testing.T) {
	_, errs := decodeArgs(localCommandType, resource.PropertyMap{keyCreate: unknown()}, false)
	if len(errs) != 1 || errs[0].Property != "create" {
		t.Fatalf("got %v", errs)
	}
}

func TestOutputsSecretRule(t *testing.T) {
	for key, want := range map[resource.PropertyKey]bool{
		keyCreate: true, keyUpdate: true, keyStdin: true, keyDelete: false, keyDir: false,
	} {
		a, _ := decodeArgs(localCommandType, resource.PropertyMap{key: secret(str("s3cr3t-value"))}, false)
		if a.OutputsSecret != want {
			t.Errorf("secret %s: OutputsSecret=%v, want %v", key, a.OutputsSecret, want)
		}
		if len(a.Secrets) != 1 || a.Secrets[0] != "s3cr3t-value" {
			t.Errorf("secret %s: Secrets=%v", key, a.Secrets)
		}
	}
	env := resource.NewProperty(resource.PropertyMap{"TOKEN": secret(str("tok"))})
	a, _ := decodeArgs(localCommandType, resource.PropertyMap{keyEnvironment: env}, false)
	if !a.OutputsSecret || a.Environment["TOKEN"] != "tok" {
		t.Errorf("secret environment value: %+v", a)
	}
}
