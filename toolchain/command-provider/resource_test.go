package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const localURN = "urn:pulumi:dev::proj::command:local:Command::c"

// recordingLog captures what the provider logs to the engine.
type recordingLog struct {
	mu    sync.Mutex
	lines []string
}

func (r *recordingLog) Log(_ context.Context, _ diag.Severity, _ resource.URN, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, msg)
	return nil
}

func (r *recordingLog) LogStatus(context.Context, diag.Severity, resource.URN, string) error {
	return nil
}

func (r *recordingLog) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func mustMarshal(t *testing.T, m resource.PropertyMap) *pulumirpc.CreateRequest {
	t.Helper()
	s, err := marshal(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &pulumirpc.CreateRequest{Urn: localURN, Properties: s}
}

func mustUnmarshal(t *testing.T, m interface{ GetProperties() *structpb.Struct }) resource.PropertyMap {
	t.Helper()
	out, err := unmarshal(m.GetProperties(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateUpdateDeleteLocal(t *testing.T) {
	log := &recordingLog{}
	p := newProvider(log)
	ctx := context.Background()
	inputs := resource.PropertyMap{
		keyCreate:      str(`echo "created $NAME"; echo warn >&2`),
		keyUpdate:      str(`echo "updated after: $PULUMI_COMMAND_STDOUT"`),
		keyDelete:      str(`test "$PULUMI_COMMAND_STDOUT" = "updated after: created x"`),
		keyEnvironment: resource.NewProperty(resource.PropertyMap{"NAME": str("x")}),
		keyAddPrevious: resource.NewProperty(true),
	}
	created, err := p.Create(ctx, mustMarshal(t, inputs))
	if err != nil {
		t.Fatal(err)
	}
	state := mustUnmarshal(t, created)
	if state[keyStdout].StringValue() != "created x" || state[keyStderr].StringValue() != "warn" {
		t.Fatalf("create outputs: %v", state)
	}
	if created.Id == "" || !strings.Contains(log.text(), "created x") {
		t.Fatalf("id %q, log %q", created.Id, log.text())
	}

	updated, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: localURN, Olds: created.Properties,
		News: mustMarshal(t, inputs).Properties})
	if err != nil {
		t.Fatal(err)
	}
	state = mustUnmarshal(t, updated)
	if got := state[keyStdout].StringValue(); got != "updated after: created x" {
		t.Fatalf("update stdout %q", got)
	}

	if _, err := p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: localURN, Properties: updated.Properties}); err != nil {
		t.Fatalf("delete saw the wrong PULUMI_COMMAND_STDOUT: %v", err)
	}
}

func TestCreateFailureCarriesRedactedStderrTail(t *testing.T) {
	p := newProvider(&recordingLog{})
	inputs := resource.PropertyMap{
		keyCreate: secret(str(`for i in $(seq 1 40); do echo "err $i" >&2; done; echo "pw=topsecret99" >&2; exit 3`)),
		keyStdin:  secret(str("topsecret99")),
	}
	_, err := p.Create(context.Background(), mustMarshal(t, inputs))
	if err == nil {
		t.Fatal("expected an error")
	}
	msg := err.Error()
	for _, want := range []string{"exit status 3", "err 40", "pw=[secret]"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, bad := range []string{"err 5\n", "topsecret99", "seq 1 40"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error %q must not contain %q", msg, bad)
		}
	}
}

func TestSecretInputsMakeSecretOutputs(t *testing.T) {
	p := newProvider(&recordingLog{})
	created, err := p.Create(context.Background(), mustMarshal(t, resource.PropertyMap{
		keyCreate:  secret(str("echo hello-secret-world")),
		keyLogging: str(logNone),
	}))
	if err != nil {
		t.Fatal(err)
	}
	state := mustUnmarshal(t, created)
	for _, k := range []resource.PropertyKey{keyCreate, keyStdout, keyStderr} {
		if !state[k].IsSecret() {
			t.Errorf("%s is not secret: %v", k, state[k])
		}
	}
	if state[keyStdout].SecretValue().Element.StringValue() != "hello-secret-world" {
		t.Errorf("stdout value changed: %v", state[keyStdout])
	}
}

func TestLoggingModes(t *testing.T) {
	for mode, want := range map[string][2]bool{
		logNone: {false, false}, logStdout: {true, false}, logStderr: {false, true}, logStdoutAndStderr: {true, true},
	} {
		log := &recordingLog{}
		_, err := newProvider(log).Create(context.Background(), mustMarshal(t, resource.PropertyMap{
			keyCreate: str("echo OUT; echo ERR >&2"), keyLogging: str(mode),
		}))
		if err != nil {
			t.Fatal(err)
		}
		got := [2]bool{strings.Contains(log.text(), "OUT"), strings.Contains(log.text(), "ERR")}
		if got != want {
			t.Errorf("logging %s: logged (stdout, stderr) = %v, want %v", mode, got, want)
		}
	}
}

func TestPreviewRunsNothing(t *testing.T) {
	p := newProvider(&recordingLog{})
	req := mustMarshal(t, resource.PropertyMap{keyCreate: str("exit 1")})
	req.Preview = true
	resp, err := p.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if state := mustUnmarshal(t, resp); !state[keyStdout].IsComputed() || resp.Id != "" {
		t.Fatalf("preview state %v id %q", state, resp.Id)
	}
}

func TestTimeoutAndCancelKillTheCommand(t *testing.T) {
	p := newProvider(&recordingLog{})
	req := mustMarshal(t, resource.PropertyMap{keyCreate: str("sleep 30")})
	req.Timeout = 0.5
	start := time.Now()
	if _, err := p.Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("timeout: got %v", err)
	}

	req.Timeout = 0
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = p.Cancel(context.Background(), &emptypb.Empty{})
	}()
	if _, err := p.Create(context.Background(), req); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("cancel: got %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("commands were not killed promptly")
	}
}

func TestHugePreviousOutputIsNotPassedInEnv(t *testing.T) {
	log := &recordingLog{}
	p := newProvider(log)
	inputs := resource.PropertyMap{keyCreate: str(`echo "len=${#PULUMI_COMMAND_STDOUT} err=$PULUMI_COMMAND_STDERR"`)}
	olds := inputs.Copy()
	olds[keyStdout] = str(strings.Repeat("x", 200<<10))
	olds[keyStderr] = str("small")
	oldState, err := marshal(olds, "test")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: localURN, Olds: oldState,
		News: mustMarshal(t, inputs).Properties})
	if err != nil {
		t.Fatalf("update failed: %v", err)
	}
	if got := mustUnmarshal(t, resp)[keyStdout].StringValue(); got != "len=0 err=small" {
		t.Fatalf("stdout %q", got)
	}
	if !strings.Contains(log.text(), "PULUMI_COMMAND_STDOUT not set") {
		t.Fatalf("no warning logged: %q", log.text())
	}
}
