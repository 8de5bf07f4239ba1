using System.Runtime.CompilerServices;
using MoCo.Model.Diagnostics;

namespace MoCo.TestSupport;

internal static class TestAssemblySetup
{
    /// <summary>
    /// Every test of the assembly this file is compiled into (each test project links it) runs with libtorch's CPU
    /// allocations poisoned (NaN), and child processes inherit the mode through the environment: a read of memory nobody
    /// wrote shows as NaN in the test that made it.
    /// </summary>
    [ModuleInitializer]
    internal static void PoisonAllocations()
    {
        Environment.SetEnvironmentVariable(AllocatorPoison.Variable, "1");
        AllocatorPoison.Enable();
        TorchLogging.QuietWarnings();
    }
}
