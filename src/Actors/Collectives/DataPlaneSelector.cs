using MoCo.Actors.Collectives.Nccl;

namespace MoCo.Actors.Collectives;

/// <summary>
/// Chooses the data plane from the setting <c>moco.data-plane.backend</c> and what <see cref="NcclProbe"/> found. A pure
/// function: NCCL only where CUDA devices and libnccl are both present and the setting allows it, the TCP ring otherwise.
/// </summary>
public static class DataPlaneSelector
{
    /// <summary>The setting's key, for messages.</summary>
    public const string SettingKey = "moco.data-plane.backend";

    /// <summary>Reads the setting's value: <c>auto</c>, <c>tcp</c> or <c>nccl</c>, in any case, around any spaces.</summary>
    /// <param name="value">The configured text.</param>
    /// <exception cref="FormatException">Any other value; the message lists the valid ones.</exception>
    public static DataPlaneRequest Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant() switch
        {
            "auto" => DataPlaneRequest.Auto,
            "tcp" => DataPlaneRequest.Tcp,
            "nccl" => DataPlaneRequest.Nccl,
            _ => throw new FormatException($"{SettingKey} must be auto, tcp or nccl; got '{value}'"),
        };
    }

    /// <summary>The plane for this host.</summary>
    /// <param name="requested">What the setting asks for.</param>
    /// <param name="probe">What this host has.</param>
    /// <exception cref="CollectiveBackendUnavailableException"><paramref name="requested"/> is <see cref="DataPlaneRequest.Nccl"/> and something NCCL needs is missing.</exception>
    public static DataPlaneDecision Choose(DataPlaneRequest requested, NcclProbeResult probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        switch (requested)
        {
            case DataPlaneRequest.Tcp:
                return new DataPlaneDecision(DataPlaneKind.Tcp, $"TCP ring: {SettingKey} = tcp");
            case DataPlaneRequest.Nccl when probe.IsAvailable:
                return new DataPlaneDecision(DataPlaneKind.Nccl, $"NCCL: {SettingKey} = nccl; {probe.Message}");
            case DataPlaneRequest.Nccl:
                throw new CollectiveBackendUnavailableException(
                    $"{SettingKey} = nccl, but this host cannot run NCCL: {string.Join("; ", probe.Problems)}. " +
                    $"Install what is missing, or set {SettingKey} = auto (or tcp) to use the TCP ring.");
            case DataPlaneRequest.Auto when probe.IsAvailable:
                return new DataPlaneDecision(DataPlaneKind.Nccl, $"NCCL: {SettingKey} = auto and {probe.Message}");
            case DataPlaneRequest.Auto:
                return new DataPlaneDecision(DataPlaneKind.Tcp, $"TCP ring: {SettingKey} = auto and {probe.Message}");
            default:
                throw new ArgumentOutOfRangeException(nameof(requested), requested, "not a data plane setting");
        }
    }
}
