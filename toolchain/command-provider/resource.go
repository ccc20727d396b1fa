package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// resourceType returns the type token of urn if this provider implements it.
func resourceType(urn string) (string, error) {
	typ := string(resource.URN(urn).Type())
	if typ != localCommandType && typ != remoteCommandType {
		return "", fmt.Errorf("unknown resource type %q", typ)
	}
	return typ, nil
}

// mustDecode decodes inputs that must be fully known (outside preview).
func mustDecode(typ string, inputs resource.PropertyMap) (*commandArgs, error) {
	a, errs := decodeArgs(typ, inputs, false)
	if len(errs) == 0 {
		return a, nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return nil, errors.Join(joined...)
}

// withOutputs returns the state of a resource: its inputs plus stdout and
// stderr, secret when a secret went into the command.
func withOutputs(inputs resource.PropertyMap, a *commandArgs, stdout, stderr string) resource.PropertyMap {
	out := inputs.Copy()
	wrap := func(s string) resource.PropertyValue {
		v := resource.NewProperty(s)
		if a.OutputsSecret {
			v = resource.MakeSecret(v)
		}
		return v
	}
	out[keyStdout] = wrap(stdout)
	out[keyStderr] = wrap(stderr)
	return out
}

// withUnknownOutputs is the preview state: inputs plus unknown outputs.
func withUnknownOutputs(inputs resource.PropertyMap) resource.PropertyMap {
	out := inputs.Copy()
	out[keyStdout] = resource.MakeComputed(resource.NewProperty(""))
	out[keyStderr] = resource.MakeComputed(resource.NewProperty(""))
	return out
}

func newID(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "check.news")
	if err != nil {
		return nil, err
	}
	checked, failures := checkInputs(typ, news)
	inputs, err := marshal(checked, "check.inputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if _, err := resourceType(req.GetUrn()); err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOldInputs(), "diff.oldInputs")
	if err != nil {
		return nil, err
	}
	if req.GetOldInputs() == nil {
		state, err := unmarshal(req.GetOlds(), "diff.olds")
		if err != nil {
			return nil, err
		}
		olds = inputsOf(state)
	}
	news, err := unmarshal(req.GetNews(), "diff.news")
	if err != nil {
		return nil, err
	}
	return diffInputs(olds, news), nil
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	inputs, err := unmarshal(req.GetProperties(), "create.properties")
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := marshal(withUnknownOutputs(inputs), "create.preview")
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	a, err := mustDecode(typ, inputs)
	if err != nil {
		return nil, err
	}
	var stdout, stderr string
	if a.Create != "" {
		// A failed create is returned as a plain error, so the engine does
		// not record the resource and the next update runs create again.
		stdout, stderr, err = p.run(ctx, resource.URN(req.GetUrn()), "create", a, a.Create, nil, req.GetTimeout())
		if err != nil {
			return nil, err
		}
	}
	props, err := marshal(withOutputs(inputs, a, stdout, stderr), "create.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: newID(resource.URN(req.GetUrn()).Name()), Properties: props}, nil
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	typ, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetOlds(), "update.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "update.news")
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := marshal(withUnknownOutputs(news), "update.preview")
		return &pulumirpc.UpdateResponse{Properties: props}, err
	}
	a, err := mustDecode(typ, news)
	if err != nil {
		return nil, err
	}
	prev := previousOutputOf(state)
	stdout, stderr := prev.Stdout, prev.Stderr
	command := a.Update
	if command == "" {
		command = a.Create
	}
	if command != "" {
		stdout, stderr, err = p.run(ctx, resource.URN(req.GetUrn()), "update", a, command, prev, req.GetTimeout())
		if err != nil {
			return nil, err
		}
	}
	props, err := marshal(withOutputs(news, a, stdout, stderr), "update.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	typ, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := unmarshal(req.GetProperties(), "delete.properties")
	if err != nil {
		return nil, err
	}
	a, err := mustDecode(typ, inputsOf(state))
	if err != nil {
		return nil, err
	}
	if a.Delete != "" {
		_, _, err = p.run(ctx, resource.URN(req.GetUrn()), "delete", a, a.Delete, previousOutputOf(state), req.GetTimeout())
		if err != nil {
			return nil, err
		}
	}
	return &emptypb.Empty{}, nil
}

// Read returns the recorded state unchanged: a command cannot be refreshed.
func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if _, err := resourceType(req.GetUrn()); err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if inputs == nil {
		state, err := unmarshal(req.GetProperties(), "read.properties")
		if err != nil {
			return nil, err
		}
		if inputs, err = marshal(inputsOf(state), "read.inputs"); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: inputs}, nil
}
