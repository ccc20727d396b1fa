package main

import (
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// replaceKeys are inputs whose change replaces the resource.
var replaceKeys = map[resource.PropertyKey]bool{keyTriggers: true}

// diffInputs compares old and new (checked) inputs. A change to triggers
// replaces the resource; any other change is an in-place update. Null and
// absent values are equal; a value that became (or stopped being) secret
// counts as a change so that the state picks up the new secretness.
func diffInputs(olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	keys := map[resource.PropertyKey]bool{}
	for k := range olds {
		keys[k] = true
	}
	for k := range news {
		keys[k] = true
	}

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	for k := range keys {
		if outputOnlyKeys[k] {
			continue
		}
		kind, changed := diffValue(k, olds, news)
		if !changed {
			continue
		}
		name := string(k)
		if replaceKeys[k] {
			kind = replaceKind(kind)
			resp.Replaces = append(resp.Replaces, name)
		}
		resp.Diffs = append(resp.Diffs, name)
		resp.DetailedDiff[name] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	slices.Sort(resp.Diffs)
	slices.Sort(resp.Replaces)
	return resp
}

func diffValue(k resource.PropertyKey, olds, news resource.PropertyMap) (pulumirpc.PropertyDiff_Kind, bool) {
	had, has := present(olds, k), present(news, k)
	switch {
	case !had && !has:
		return 0, false
	case !had:
		return pulumirpc.PropertyDiff_ADD, true
	case !has:
		return pulumirpc.PropertyDiff_DELETE, true
	case olds[k].DeepEquals(news[k]) && !news[k].ContainsUnknowns():
		return 0, false
	default:
		return pulumirpc.PropertyDiff_UPDATE, true
	}
}

func replaceKind(k pulumirpc.PropertyDiff_Kind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case pulumirpc.PropertyDiff_ADD:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case pulumirpc.PropertyDiff_DELETE:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
}
