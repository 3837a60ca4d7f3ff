import ArgumentParser
import DAgentCLI
import DAgentNode
import DAgentRouting

MallocTuning.apply()
BenchCommand.main()
