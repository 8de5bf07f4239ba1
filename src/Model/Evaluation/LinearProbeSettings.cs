using MoCo.Model.Training;

namespace MoCo.Model.Evaluation;

/// <summary>
/// The linear-classification protocol of the official facebookresearch/moco main_lincls.py: SGD with lr 30,
/// momentum 0.9, weight decay 0, 100 epochs, lr x0.1 at epochs 60 and 80, batch 256, fc weights ~ N(0, 0.01)
/// and bias 0. Every value can be changed; <see cref="CacheFeatures"/> is our addition and departs from it.
/// </summary>
public sealed record LinearProbeSettings
{
    /// <summary>Training epochs (main_lincls --epochs 100).</summary>
    public int Epochs { get; init; } = 100;

    /// <summary>Initial learning rate (main_lincls --lr 30).</summary>
    public double Lr { get; init; } = 30.0;

    /// <summary>SGD momentum (0.9).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>SGD weight decay (main_lincls --wd 0).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Epochs at which the learning rate is multiplied by 0.1 (main_lincls --schedule 60 80).</summary>
    public IReadOnlyList<int> Milestones { get; init; } = [60, 80];

    /// <summary>Cosine schedule instead of the milestones (main_lincls --cos; off by default).</summary>
    public bool Cosine { get; init; }

    /// <summary>Images per training and evaluation batch (256). The last, partial batch is kept (drop_last=False).</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Standard deviation of the fc weight initialisation (0.01; the bias starts at 0).</summary>
    public double InitStd { get; init; } = 0.01;

    /// <summary>Seed of the fc initialisation, the data order and the augmentation.</summary>
    public ulong Seed { get; init; }

    /// <summary>
    /// When true, the backbone features of every train and test image are computed once under the test
    /// transform and the head is trained on them, which is much faster on a CPU. It requires training without
    /// augmentation (no train transform), so it departs from the official protocol, which trains on
    /// RandomResizedCrop + flip views and recomputes the features every epoch. Off by default.
    /// </summary>
    public bool CacheFeatures { get; init; }

    /// <summary>Threads that build image batches.</summary>
    public int Threads { get; init; } = 2;

    /// <summary>The per-epoch learning rate: step at <see cref="Milestones"/>, or cosine.</summary>
    public LrSchedule Schedule => new(Lr, Epochs, Cosine, Milestones);

    /// <summary>Throws <see cref="ArgumentException"/> when a value is out of range; returns this otherwise.</summary>
    public LinearProbeSettings Validate()
    {
        if (Epochs < 1)
        {
            throw new ArgumentException($"Epochs must be at least 1, got {Epochs}.");
        }
        if (!(Lr > 0))
        {
            throw new ArgumentException($"Lr must be positive, got {Lr}.");
        }
        if (!(Momentum >= 0 && Momentum < 1))
        {
            throw new ArgumentException($"Momentum must lie in [0, 1), got {Momentum}.");
        }
        if (!(WeightDecay >= 0))
        {
            throw new ArgumentException($"WeightDecay must be non-negative, got {WeightDecay}.");
        }
        if (BatchSize < 1)
        {
            throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}.");
        }
        if (!(InitStd >= 0))
        {
            throw new ArgumentException($"InitStd must be non-negative, got {InitStd}.");
        }
        if (Threads < 1)
        {
            throw new ArgumentException($"Threads must be at least 1, got {Threads}.");
        }
        ArgumentNullException.ThrowIfNull(Milestones);
        return this;
    }
}
