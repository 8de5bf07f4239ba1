using MoCo.Actors.Collectives.Nccl;

namespace MoCo.NcclCheck;

/// <summary>
/// moco-nccl-check: runs <see cref="NcclCollective"/> for real, one rank per GPU on threads of this process, and prints
/// one PASS or FAIL line per check and rank, then "N passed, N failed". Exit code 0 when all pass, 1 when one fails,
/// 2 when the host cannot run it (the probe's message says what is missing).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var probe = NcclProbe.Run();
        Console.WriteLine(probe.Message);
        if (!probe.IsAvailable)
        {
            Console.WriteLine("NOT RUN: this host cannot run the NCCL data plane (see above).");
            return 2;
        }

        var world = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 2;
        if (world < 2 || world > probe.CudaDeviceCount)
        {
            Console.WriteLine($"NOT RUN: the check needs a world of 2 or more ranks, one per CUDA device; asked for {world}, the host has {probe.CudaDeviceCount}.");
            return 2;
        }

        var checks = new NcclChecks(world);
        checks.RunAll();
        Console.WriteLine($"{checks.Passed} passed, {checks.Failed} failed");
        return checks.Failed == 0 ? 0 : 1;
    }
}
