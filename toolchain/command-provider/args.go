package main

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Resource type tokens implemented by this provider.
const (
	localCommandType  = "command:local:Command"
	remoteCommandType = "command:remote:Command"
)

// Logging modes (the command:local:Logging / command:remote:Logging enums).
const (
	logStdout          = "stdout"
	logStderr          = "stderr"
	logStdoutAndStderr = "stdoutAndStderr"
	logNone            = "none"
)

var defaultInterpreter = []string{"/bin/sh", "-c"}

// commandArgs are the decoded inputs of a local or remote Command.
type commandArgs struct {
	Create, Update, Delete string
	Environment            map[string]string
	Stdin                  string
	AddPreviousOutputInEnv bool
	Logging                string

	// local only
	Dir         string
	Interpreter []string

	// remote only
	Connection *connection

	// OutputsSecret is true when stdout/stderr must be stored as secrets.
	OutputsSecret bool
	// Secrets are the plain values of all secret inputs, for redaction.
	Secrets []string
}

// connection is command:remote:Connection (and, for Proxy,
// command:remote:ProxyConnection).
type connection struct {
	Host               string
	Port               int
	User               string
	Password           string
	PrivateKey         string
	PrivateKeyPassword string
	AgentSocketPath    string
	HostKey            string
	DialErrorLimit     int
	PerDialTimeout     int
	Proxy              *connection
}

func (c *connection) address() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// Connection defaults, as in the upstream schema.
const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15
)

// decodeArgs decodes the inputs of resource type typ. With allowUnknown,
// unknown values are tolerated (Check during preview).
func decodeArgs(typ string, m resource.PropertyMap, allowUnknown bool) (*commandArgs, []fieldError) {
	d := &decoder{allowUnknown: allowUnknown}
	a := &commandArgs{
		Create:                 d.str(m, keyCreate),
		Update:                 d.str(m, keyUpdate),
		Delete:                 d.str(m, keyDelete),
		Environment:            d.strMap(m, keyEnvironment),
		Stdin:                  d.str(m, keyStdin),
		AddPreviousOutputInEnv: d.boolean(m, keyAddPrevious, true),
		Logging:                d.str(m, keyLogging),
	}
	switch a.Logging {
	case "":
		a.Logging = logStdoutAndStderr
	case logStdout, logStderr, logStdoutAndStderr, logNone:
	default:
		d.fail(keyLogging, "must be one of stdout, stderr, stdoutAndStderr, none; got %q", a.Logging)
	}

	switch typ {
	case localCommandType:
		a.Dir = d.str(m, keyDir)
		a.Interpreter = d.strList(m, keyInterpreter)
		if present(m, keyInterpreter) && !isUnknown(m, keyInterpreter) && len(a.Interpreter) == 0 {
			d.fail(keyInterpreter, "must not be empty")
		}
		if len(a.Interpreter) == 0 {
			a.Interpreter = defaultInterpreter
		}
	case remoteCommandType:
		switch {
		case isUnknown(m, keyConnection):
		case !present(m, keyConnection):
			d.fail(keyConnection, "is required")
		default:
			a.Connection = decodeConnection(d, d.object(m, keyConnection), string(keyConnection)+".", true)
		}
	default:
		d.fail("", "unknown resource type %q", typ)
	}

	for _, k := range []resource.PropertyKey{keyCreate, keyUpdate, keyEnvironment, keyStdin} {
		if v, ok := m[k]; ok && v.ContainsSecrets() {
			a.OutputsSecret = true
		}
	}
	for _, v := range m {
		secretStrings(v, false, &a.Secrets)
	}
	return a, d.errs
}

func decodeConnection(parent *decoder, m resource.PropertyMap, prefix string, allowProxy bool) *connection {
	if m == nil {
		return nil
	}
	d := &decoder{prefix: prefix, allowUnknown: parent.allowUnknown}
	c := &connection{
		Host:               d.str(m, "host"),
		Port:               d.integer(m, "port", defaultPort),
		User:               d.str(m, "user"),
		Password:           d.str(m, "password"),
		PrivateKey:         d.str(m, "privateKey"),
		PrivateKeyPassword: d.str(m, "privateKeyPassword"),
		AgentSocketPath:    d.str(m, "agentSocketPath"),
		HostKey:            d.str(m, "hostKey"),
		DialErrorLimit:     d.integer(m, "dialErrorLimit", defaultDialErrorLimit),
		PerDialTimeout:     d.integer(m, "perDialTimeout", defaultPerDialTimeout),
	}
	if c.User == "" {
		c.User = defaultUser
	}
	if c.Host == "" && !isUnknown(m, "host") {
		d.fail("host", "is required")
	}
	if c.Port <= 0 || c.Port > 65535 {
		d.fail("port", "must be between 1 and 65535, got %d", c.Port)
	}
	if c.PerDialTimeout <= 0 {
		d.fail("perDialTimeout", "must be positive, got %d", c.PerDialTimeout)
	}
	if allowProxy {
		c.Proxy = decodeConnection(d, d.object(m, "proxy"), prefix+"proxy.", false)
	} else if present(m, "proxy") {
		d.fail("proxy", "nested proxies are not supported")
	}
	parent.errs = append(parent.errs, d.errs...)
	return c
}
