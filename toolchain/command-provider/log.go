package main

import (
	"context"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
)

// engineLog sends diagnostics to the Pulumi engine. Log messages are kept in
// the update's output; LogStatus messages only show in the progress display.
type engineLog interface {
	Log(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
	LogStatus(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

type nopLog struct{}

func (nopLog) Log(context.Context, diag.Severity, resource.URN, string) error       { return nil }
func (nopLog) LogStatus(context.Context, diag.Severity, resource.URN, string) error { return nil }

// newHostLogger adapts the engine host client; nil (attach mode) logs nothing.
func newHostLogger(host *provider.HostClient) engineLog {
	if host == nil {
		return nopLog{}
	}
	return host
}
