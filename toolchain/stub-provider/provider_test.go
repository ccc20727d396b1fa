package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestIdentityFromInstallDir(t *testing.T) {
	exe := "/home/u/.pulumi/plugins/resource-aws-v7.51.1/pulumi-resource-aws"
	name, version, err := identity(exe, exe, env(nil))
	if err != nil || name != "aws" || version != "7.51.1" {
		t.Fatalf("got %q %q %v", name, version, err)
	}
}

func TestIdentityFallbacks(t *testing.T) {
	name, version, err := identity("./stub-provider", "/tmp/stub-provider",
		env(map[string]string{envName: "gcp", envVersion: "10.2.0"}))
	if err != nil || name != "gcp" || version != "10.2.0" {
		t.Fatalf("env: got %q %q %v", name, version, err)
	}
	// named by argv[0] but not in a plugin directory: the fallback version
	if _, version, _ = identity("/usr/bin/pulumi-resource-tls", "/usr/bin/pulumi-resource-tls", env(nil)); version != fallbackVersion {
		t.Fatalf("fallback: got %q", version)
	}
	if _, _, err = identity("/tmp/stub-provider", "/tmp/stub-provider", env(nil)); err == nil {
		t.Fatal("no name: want an error")
	}
}

func marshalT(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unmarshalT(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const gcpInstanceURN = "urn:pulumi:t::p::gcp:compute/instance:Instance::vm"

func TestPreviewCreateEchoesInputsAndUnknownOutputs(t *testing.T) {
	p := newStub("gcp", "10.2.0")
	inputs := resource.PropertyMap{
		"machineType":       resource.NewProperty("a2-highgpu-8g"),
		"networkInterfaces": resource.NewProperty([]resource.PropertyValue{resource.NewProperty(resource.PropertyMap{})}),
		"metadata":          resource.MakeSecret(resource.NewProperty("s3cret")),
	}
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: gcpInstanceURN, Properties: marshalT(t, inputs), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	out := unmarshalT(t, resp.GetProperties())
	if out["machineType"].StringValue() != "a2-highgpu-8g" {
		t.Errorf("machineType not echoed: %v", out["machineType"])
	}
	if !out["metadata"].IsSecret() {
		t.Errorf("secret input lost its secretness: %v", out["metadata"])
	}
	for _, k := range []resource.PropertyKey{"instanceId", "selfLink", "networkInterfaces"} {
		if !out[k].IsComputed() {
			t.Errorf("%s: want unknown, got %v", k, out[k])
		}
	}
}

func TestRealOperationsRefused(t *testing.T) {
	p := newStub("aws", "7.51.1")
	urn := "urn:pulumi:t::p::aws:ec2/vpc:Vpc::v"
	_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: marshalT(t, resource.PropertyMap{})})
	want := "styx stub provider: preview only (the real aws provider is not installable here)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("create: got %v", err)
	}
	_, err = p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: urn, News: marshalT(t, resource.PropertyMap{})})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("update: got %v", err)
	}
	if _, err = p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: urn, News: marshalT(t, resource.PropertyMap{}), Preview: true}); err != nil {
		t.Fatalf("preview update: %v", err)
	}
}

func TestProviderLevelRPCs(t *testing.T) {
	p := newStub("aws", "7.51.1")
	info, _ := p.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if info.GetVersion() != "7.51.1" {
		t.Errorf("version %q", info.GetVersion())
	}
	args, _ := structpb.NewStruct(map[string]any{"region": "eu-west-1"})
	c, err := p.Configure(context.Background(), &pulumirpc.ConfigureRequest{Args: args})
	if err != nil || !c.GetAcceptSecrets() || !c.GetSupportsPreview() {
		t.Fatalf("configure: %v %v", c, err)
	}
	d, _ := p.Diff(context.Background(), &pulumirpc.DiffRequest{})
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("diff: %v", d.GetChanges())
	}
	s, err := p.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil || !strings.Contains(s.GetSchema(), `"name":"aws"`) {
		t.Errorf("schema: %v %v", s, err)
	}
	resp, err := p.Invoke(context.Background(), &pulumirpc.InvokeRequest{
		Tok: "aws:index/getAvailabilityZones:getAvailabilityZones", Args: marshalT(t, resource.PropertyMap{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	names := unmarshalT(t, resp.GetReturn())["names"].ArrayValue()
	if len(names) != 3 || names[0].StringValue() != "eu-west-1a" {
		t.Errorf("zones of the configured region: %v", names)
	}
}

func TestRegionFromConfigVariables(t *testing.T) {
	req := &pulumirpc.ConfigureRequest{Variables: map[string]string{"aws:config:region": "ap-south-1"}}
	if r := regionOf("aws", req); r != "ap-south-1" {
		t.Errorf("got %q", r)
	}
}

func TestCannedAmi(t *testing.T) {
	filter := func(name, value string) resource.PropertyValue {
		return resource.NewProperty(resource.PropertyMap{
			"name": resource.NewProperty(name), "values": resource.NewProperty([]resource.PropertyValue{resource.NewProperty(value)}),
		})
	}
	args := resource.PropertyMap{
		"owners":  resource.NewProperty([]resource.PropertyValue{resource.NewProperty("099720109477")}),
		"filters": resource.NewProperty([]resource.PropertyValue{filter("name", "ubuntu/images/*-arm64-server-*"), filter("architecture", "arm64")}),
	}
	a := cannedInvoke("aws:ec2/getAmi:getAmi", args, "")
	b := cannedInvoke("aws:ec2/getAmi:getAmi", args.Copy(), "")
	id := a["id"].StringValue()
	if !strings.HasPrefix(id, "ami-0stub") || id != b["id"].StringValue() {
		t.Errorf("id %q vs %q: want a stable ami-0stub... id", id, b["id"].StringValue())
	}
	if a["architecture"].StringValue() != "arm64" || a["ownerId"].StringValue() != "099720109477" {
		t.Errorf("fields from the query: %v", a)
	}
	other := cannedInvoke("aws:ec2/getAmi:getAmi", resource.PropertyMap{"owners": args["owners"]}, "")
	if other["id"].StringValue() == id {
		t.Error("different queries share an id")
	}
	if len(cannedInvoke("gcp:compute/getImage:getImage", args, "")) != 0 {
		t.Error("unknown function: want an empty object")
	}
}
