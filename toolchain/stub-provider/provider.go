package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// stub implements pulumirpc.ResourceProviderServer for any package, for
// previews only. Each provider resource (default or explicit) gets its own
// process, so the configuration seen by Configure is this instance's.
type stub struct {
	pulumirpc.UnimplementedResourceProviderServer

	name    string // package: aws, gcp, tls...
	version string
	region  string // from Configure, for canned invoke answers
}

func newStub(name, version string) *stub {
	return &stub{name: name, version: version}
}

// errNotPreview is what any real operation gets.
func (p *stub) errNotPreview(op string, urn string) error {
	return fmt.Errorf("styx stub provider: preview only (the real %s provider is not installable here); "+
		"refusing %s of %s", p.name, op, urn)
}

func rpcOptions(label string) plugin.MarshalOptions {
	return plugin.MarshalOptions{
		Label:         label,
		KeepUnknowns:  true,
		KeepSecrets:   true,
		KeepResources: true,
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

func (p *stub) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

// GetSchema returns a package with no resources or functions: enough for
// tooling that asks, useless for generating an SDK (by design).
func (p *stub) GetSchema(_ context.Context, req *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	if v := req.GetVersion(); v != 0 {
		return nil, fmt.Errorf("unsupported schema version %d", v)
	}
	b, err := json.Marshal(map[string]any{
		"name":        p.name,
		"version":     p.version,
		"description": "styx PREVIEW-ONLY stub standing in for the " + p.name + " provider (toolchain/stub-provider)",
	})
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: string(b)}, nil
}

// CheckConfig accepts any provider configuration as is.
func (p *stub) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *stub) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure accepts anything and remembers the region, for canned answers.
func (p *stub) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	p.region = regionOf(p.name, req)
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

// regionOf reads `region` from the provider's arguments, else from its
// config variables (`aws:config:region` / `aws:region`).
func regionOf(pkg string, req *pulumirpc.ConfigureRequest) string {
	if v, ok := req.GetArgs().GetFields()["region"]; ok && v.GetStringValue() != "" {
		return v.GetStringValue()
	}
	for k, v := range req.GetVariables() {
		if strings.HasPrefix(k, pkg+":") && strings.HasSuffix(k, ":region") && v != "" {
			return v
		}
	}
	return ""
}

// Check echoes the inputs: no defaults, no validation.
func (p *stub) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Diff never reports a change.
func (p *stub) Diff(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *stub) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if !req.GetPreview() {
		return nil, p.errNotPreview("create", req.GetUrn())
	}
	props, err := p.previewState(req.GetUrn(), req.GetProperties(), "create")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Properties: props}, nil
}

func (p *stub) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if !req.GetPreview() {
		return nil, p.errNotPreview("update", req.GetUrn())
	}
	props, err := p.previewState(req.GetUrn(), req.GetNews(), "update")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// previewState is the state a preview reports: the inputs plus the type's
// computed outputs as unknowns (see outputs.go).
func (p *stub) previewState(urn string, inputs *structpb.Struct, label string) (*structpb.Struct, error) {
	in, err := unmarshal(inputs, label+".inputs")
	if err != nil {
		return nil, err
	}
	return marshal(withComputedOutputs(string(resource.URN(urn).Type()), in), label+".preview")
}

// Read returns what it was given: a stub knows nothing beyond the state.
func (p *stub) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Delete succeeds without doing anything: a stub never created anything.
func (p *stub) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *stub) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	args, err := unmarshal(req.GetArgs(), "invoke.args")
	if err != nil {
		return nil, err
	}
	ret, err := marshal(cannedInvoke(req.GetTok(), args, p.region), "invoke.return")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}

func (p *stub) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
