namespace MoCo.Host.Configuration;

/// <summary>The <c>moco.data-plane</c> section: which collective moves tensors between processes.</summary>
public sealed record DataPlaneSettings
{
    /// <summary><c>auto</c> (NCCL where CUDA devices and libnccl are both present, else the TCP ring), <c>tcp</c> or <c>nccl</c>.</summary>
    public string Backend { get; init; } = "auto";
}
