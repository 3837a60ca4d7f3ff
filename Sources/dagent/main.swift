import ArgumentParser
import DAgentCLI

/// `dagent`: run a node, talk to the tree, inspect it, benchmark it.
struct DAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dagent",
        abstract: "A tree of named nodes exchanging typed messages.",
        discussion: """
        Start a root:    dagent run --name root --listen tcp://127.0.0.1:7000
        Add an agent:    dagent run --name a1 --listen tcp://127.0.0.1:7001 --parent tcp://127.0.0.1:7000
        Echo endpoint:   dagent run --name ep1 --parent tcp://127.0.0.1:7001 --echo
        Ask it:          dagent request --via tcp://127.0.0.1:7001 --to ep1 hello
        See the tree:    dagent tree --via tcp://127.0.0.1:7000
        With plugins:    dagent run --name a1 --listen tcp://127.0.0.1:7001 --plugins plugins
        Local agent:     dagent run --name a1 --msgq /tmp/a1.q --parent tcp://127.0.0.1:7000
        Local leaf:      dagent run --name l1 --parent msgq:///tmp/a1.q --echo
        Brother p2p:     dagent request --via msgq:///tmp/a1.q --to l1 hello
        Deploy a tree:   dagent up -f tree.yaml; dagent status -f tree.yaml; dagent down -f tree.yaml
        """,
        subcommands: [RunCommand.self, SendCommand.self, RequestCommand.self, RecvCommand.self, PubCommand.self, SubCommand.self,
                      TreeCommand.self, ReloadCommand.self, StateCommandGroup.self,
                      UpCommand.self, DownCommand.self, StatusCommand.self, LogsCommand.self, RestartCommand.self,
                      DeployConfigCommand.self, SystemdCommand.self, SuperviseCommand.self, OptionsCommand.self, PushCommandGroup.self,
                      CertsCommandGroup.self]
    )
}

MallocTuning.apply()
DAgentCommand.main()
