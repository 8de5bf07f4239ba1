namespace MoCo.Model;

/// <summary>MoCo's own hyper-parameters (official names: --moco-dim, --moco-k, --moco-m, --moco-t, --symmetric).</summary>
public sealed record MocoSettings(int Dim, int QueueSize, double Momentum, double Temperature, bool Symmetric)
{
    /// <summary>MoCo v1 on ImageNet: dim 128, K 65536, m 0.999, T 0.07.</summary>
    public static readonly MocoSettings V1 = new(128, 65536, 0.999, 0.07, false);

    /// <summary>MoCo v2 on ImageNet: as v1 with T 0.2 (and the MLP head and aug+ elsewhere).</summary>
    public static readonly MocoSettings V2 = new(128, 65536, 0.999, 0.2, false);

    /// <summary>The official CIFAR-10 demo: K 4096, m 0.99, T 0.1.</summary>
    public static readonly MocoSettings Cifar = new(128, 4096, 0.99, 0.1, false);
}
