package main

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func triggers(vs ...string) resource.PropertyValue {
	arr := make([]resource.PropertyValue, len(vs))
	for i, v := range vs {
		arr[i] = str(v)
	}
	return resource.NewProperty(arr)
}

func TestDiff(t *testing.T) {
	base := resource.PropertyMap{keyCreate: str("a"), keyTriggers: triggers("1")}
	with := func(k resource.PropertyKey, v resource.PropertyValue) resource.PropertyMap {
		m := base.Copy()
		if v.IsNull() {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name     string
		olds     resource.PropertyMap
		news     resource.PropertyMap
		changes  pulumirpc.DiffResponse_DiffChanges
		replaces []string
		kind     map[string]pulumirpc.PropertyDiff_Kind
	}{
		{"identical", base, base.Copy(), pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"outputs ignored", with(keyStdout, str("x")), base, pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"null equals absent", with(keyDir, resource.NewNullProperty()), with(keyDelete, resource.NewNullProperty()),
			pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"create changed", base, with(keyCreate, str("b")), pulumirpc.DiffResponse_DIFF_SOME, nil,
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}},
		{"delete added", base, with(keyDelete, str("rm")), pulumirpc.DiffResponse_DIFF_SOME, nil,
			map[string]pulumirpc.PropertyDiff_Kind{"delete": pulumirpc.PropertyDiff_ADD}},
		{"logging removed", with(keyLogging, str("none")), base, pulumirpc.DiffResponse_DIFF_SOME, nil,
			map[string]pulumirpc.PropertyDiff_Kind{"logging": pulumirpc.PropertyDiff_DELETE}},
		{"became secret", base, with(keyCreate, secret(str("a"))), pulumirpc.DiffResponse_DIFF_SOME, nil,
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}},
		{"unknown create", base, with(keyCreate, unknown()), pulumirpc.DiffResponse_DIFF_SOME, nil,
			map[string]pulumirpc.PropertyDiff_Kind{"create": pulumirpc.PropertyDiff_UPDATE}},
		{"triggers changed", base, with(keyTriggers, triggers("2")), pulumirpc.DiffResponse_DIFF_SOME,
			[]string{"triggers"}, map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_UPDATE_REPLACE}},
		{"triggers unknown", base, with(keyTriggers, resource.NewProperty([]resource.PropertyValue{unknown()})),
			pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, nil},
		{"triggers removed", base, with(keyTriggers, resource.NewNullProperty()), pulumirpc.DiffResponse_DIFF_SOME,
			[]string{"triggers"}, map[string]pulumirpc.PropertyDiff_Kind{"triggers": pulumirpc.PropertyDiff_DELETE_REPLACE}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := diffInputs(tc.olds, tc.news)
			if resp.Changes != tc.changes {
				t.Fatalf("changes: got %v, want %v (%v)", resp.Changes, tc.changes, resp.Diffs)
			}
			if len(resp.Replaces) != len(tc.replaces) || (len(tc.replaces) > 0 && resp.Replaces[0] != tc.replaces[0]) {
				t.Fatalf("replaces: got %v, want %v", resp.Replaces, tc.replaces)
			}
			if resp.DeleteBeforeReplace {
				t.Fatal("deleteBeforeReplace must be false")
			}
			for k, want := range tc.kind {
				if got := resp.DetailedDiff[k]; got == nil || got.Kind != want || !got.InputDiff {
					t.Fatalf("detailed diff %s: got %v, want %v", k, got, want)
				}
			}
		})
	}
}
