using MoCo.Actors.Collectives;
using MoCo.Actors.Collectives.Nccl;
using MoCo.Host.Configuration;
using MoCo.Model.Training;

namespace MoCo.Host.Hosting;

/// <summary>
/// The start-up decision of the data plane: probe CUDA and libnccl, choose from <c>moco.data-plane.backend</c> and the
/// compute device, and say what was chosen and why in one line. NCCL moves CUDA tensors only, so workers on the CPU
/// always use the in-process group (one process) or the TCP ring (several); workers on CUDA use NCCL where it can run,
/// and otherwise the same CPU collectives through host copies.
/// </summary>
public static class DataPlaneChoice
{
    /// <summary>The plane for workers on <paramref name="device"/>, probed on this host.</summary>
    /// <param name="config">The section.</param>
    /// <param name="device">Where the workers compute.</param>
    /// <exception cref="ConfigurationError">An unknown value, or <c>nccl</c> where it cannot run.</exception>
    public static (DataPlaneKind Backend, string Line) Choose(DataPlaneSettings config, ComputeDevice device)
    {
        // the probe loads libcudart and libnccl: only where NCCL could be chosen
        return Choose(config, device, device == ComputeDevice.Cuda || Requested(config) == DataPlaneRequest.Nccl ? NcclProbe.Run() : null);
    }

    /// <summary>The plane for workers on <paramref name="device"/> on a host where the NCCL probe found <paramref name="probe"/>.</summary>
    /// <param name="config">The section.</param>
    /// <param name="device">Where the workers compute.</param>
    /// <param name="probe">What the NCCL probe found; may be null on the CPU.</param>
    /// <exception cref="ConfigurationError">An unknown value, or <c>nccl</c> where it cannot run.</exception>
    public static (DataPlaneKind Backend, string Line) Choose(DataPlaneSettings config, ComputeDevice device, NcclProbeResult? probe)
    {
        var requested = Requested(config);
        if (device == ComputeDevice.Cpu)
        {
            if (requested == DataPlaneRequest.Nccl)
            {
                if (probe is { IsAvailable: false })
                {
                    RefuseUnavailable(probe); // what the host lacks comes first
                }

                throw new ConfigurationError($"{DataPlaneSelector.SettingKey} = nccl, but the workers compute on the CPU and NCCL moves CUDA tensors only: "
                    + $"set {DeviceChoice.SettingKey} = cuda (or auto), or {DataPlaneSelector.SettingKey} = auto (or tcp)");
            }

            return (DataPlaneKind.Tcp, $"data plane: TCP ring between processes, in-process group within one ({DataPlaneSelector.SettingKey} = "
                + $"{config.Backend.Trim().ToLowerInvariant()} and the workers compute on the CPU)");
        }

        ArgumentNullException.ThrowIfNull(probe);
        DataPlaneDecision choice;
        try
        {
            choice = DataPlaneSelector.Choose(requested, probe);
        }
        catch (CollectiveBackendUnavailableException e)
        {
            throw new ConfigurationError(e.Message);
        }

        return choice.Backend == DataPlaneKind.Nccl
            ? (DataPlaneKind.Nccl, $"data plane: {choice.Reason}")
            : (DataPlaneKind.Tcp, $"data plane: {choice.Reason}; CUDA tensors go through host copies when there is more than one worker");
    }

    private static void RefuseUnavailable(NcclProbeResult probe)
    {
        try
        {
            DataPlaneSelector.Choose(DataPlaneRequest.Nccl, probe);
        }
        catch (CollectiveBackendUnavailableException e)
        {
            throw new ConfigurationError(e.Message);
        }
    }

    private static DataPlaneRequest Requested(DataPlaneSettings config)
    {
        try
        {
            return DataPlaneSelector.Parse(config.Backend);
        }
        catch (FormatException e)
        {
            throw new ConfigurationError(e.Message);
        }
    }
}
