package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// defaultRegion is used for canned answers when the provider has no region.
const defaultRegion = "us-east-1"

// cannedInvoke answers the data-source functions the styx backends call with
// fixed, clearly fake values; any other function gets an empty object.
func cannedInvoke(tok string, args resource.PropertyMap, region string) resource.PropertyMap {
	if region == "" {
		region = defaultRegion
	}
	switch tok {
	case "aws:ec2/getAmi:getAmi":
		return stubAmi(args)
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		out := resource.PropertyMap{
			"id":         resource.NewProperty(region),
			"region":     resource.NewProperty(region),
			"names":      strings3(region+"a", region+"b", region+"c"),
			"zoneIds":    strings3("stub-az1", "stub-az2", "stub-az3"),
			"groupNames": strings3(region, region, region),
		}
		copyArgs(out, args, "state", "filters", "allAvailabilityZones", "excludeNames", "excludeZoneIds")
		return out
	case "aws:ec2/getSubnets:getSubnets":
		out := resource.PropertyMap{
			"id":     resource.NewProperty(region),
			"region": resource.NewProperty(region),
			"ids":    resource.NewProperty([]resource.PropertyValue{resource.NewProperty("subnet-0stub" + digest(args))}),
		}
		copyArgs(out, args, "filters", "tags")
		return out
	case "aws:index/getRegion:getRegion":
		return resource.PropertyMap{
			"id":          resource.NewProperty(region),
			"name":        resource.NewProperty(region),
			"region":      resource.NewProperty(region),
			"endpoint":    resource.NewProperty("ec2." + region + ".amazonaws.com"),
			"description": resource.NewProperty("styx stub region"),
		}
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.PropertyMap{
			"id":        resource.NewProperty("000000000000"),
			"accountId": resource.NewProperty("000000000000"),
			"arn":       resource.NewProperty("arn:aws:iam::000000000000:user/styx-stub"),
			"userId":    resource.NewProperty("STYXSTUB"),
		}
	}
	return resource.PropertyMap{}
}

// stubAmi is getAmi's answer: an obviously fake id derived from the query
// (two lookups of the same image agree), fields taken from its filters.
func stubAmi(args resource.PropertyMap) resource.PropertyMap {
	filter := map[string]string{}
	if f, ok := args["filters"]; ok && f.IsArray() {
		for _, e := range f.ArrayValue() {
			if !e.IsObject() {
				continue
			}
			o := e.ObjectValue()
			name, values := o["name"], o["values"]
			if name.IsString() && values.IsArray() && len(values.ArrayValue()) > 0 && values.ArrayValue()[0].IsString() {
				filter[name.StringValue()] = values.ArrayValue()[0].StringValue()
			}
		}
	}
	pick := func(key, def string) string {
		if v, ok := filter[key]; ok {
			return v
		}
		return def
	}
	owner := "000000000000"
	if o, ok := args["owners"]; ok && o.IsArray() && len(o.ArrayValue()) > 0 && o.ArrayValue()[0].IsString() {
		owner = o.ArrayValue()[0].StringValue()
	}
	id := "ami-0stub" + digest(args)
	name := strings.ReplaceAll(pick("name", "styx-stub-image"), "*", "stub")
	out := resource.PropertyMap{
		"id":                 resource.NewProperty(id),
		"imageId":            resource.NewProperty(id),
		"arn":                resource.NewProperty(fmt.Sprintf("arn:aws:ec2:%s::image/%s", defaultRegion, id)),
		"name":               resource.NewProperty(name),
		"description":        resource.NewProperty("styx stub provider: not a real image"),
		"architecture":       resource.NewProperty(pick("architecture", "x86_64")),
		"virtualizationType": resource.NewProperty(pick("virtualization-type", "hvm")),
		"rootDeviceType":     resource.NewProperty(pick("root-device-type", "ebs")),
		"rootDeviceName":     resource.NewProperty("/dev/sda1"),
		"ownerId":            resource.NewProperty(owner),
		"imageOwnerAlias":    resource.NewProperty(owner),
		"state":              resource.NewProperty("available"),
		"creationDate":       resource.NewProperty("2020-01-01T00:00:00.000Z"),
		"public":             resource.NewProperty(true),
		"tags":               resource.NewProperty(resource.PropertyMap{}),
	}
	copyArgs(out, args, "owners", "filters", "mostRecent", "nameRegex", "executableUsers", "includeDeprecated")
	return out
}

func strings3(a, b, c string) resource.PropertyValue {
	return resource.NewProperty([]resource.PropertyValue{resource.NewProperty(a), resource.NewProperty(b), resource.NewProperty(c)})
}

func copyArgs(out, args resource.PropertyMap, keys ...string) {
	for _, k := range keys {
		if v, ok := args[resource.PropertyKey(k)]; ok {
			out[resource.PropertyKey(k)] = v
		}
	}
}

// digest is 12 hex digits that depend only on the arguments (JSON with
// sorted keys), so two identical lookups get the same answer.
func digest(args resource.PropertyMap) string {
	b, err := json.Marshal(args.Mappable())
	if err != nil {
		b = []byte(fmt.Sprint(args.StableKeys()))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}
