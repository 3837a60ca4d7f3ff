import ArgumentParser
import DAgentCLI
import DAgentNode
import DAgentRouting

BenchCommand.main()
