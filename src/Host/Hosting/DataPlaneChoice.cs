using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Host.Configuration;

namespace MoCo.Host.Hosting;

/// <summary>
/// The start-up decision of a process that may share its run with others: probe CUDA and libnccl, choose the data
/// plane from <c>moco.data-plane.backend</c>, and say what was chosen and why in one line.
/// </summary>
public static class DataPlaneChoice
{
    /// <summary>The line to print; throws <see cref="ConfigurationError"/> when <c>nccl</c> is forced and cannot run.</summary>
    /// <param name="config">The section.</param>
    public static string Describe(DataPlaneConfig config)
    {
        DataPlaneBackend requested;
        try
        {
            requested = CollectiveBackendSelector.Parse(config.Backend);
        }
        catch (FormatException e)
        {
            throw new ConfigurationError(e.Message);
        }

        CollectiveBackendChoice choice;
        try
        {
            choice = CollectiveBackendSelector.Choose(requested, NcclProbe.Run());
        }
        catch (CollectiveBackendUnavailableException e)
        {
            throw new ConfigurationError(e.Message);
        }

        return choice.Backend == CollectiveBackend.Nccl
            // the binding is built and probed, but the workers do not drive NCCL yet (README, "Several processes")
            ? $"data plane: TCP ring; NCCL would be chosen ({choice.Reason}) but the workers do not use it yet"
            : $"data plane: {choice.Reason}";
    }
}
