using System.Globalization;

namespace MoCo.Bench;

/// <summary>One epoch of <c>moco-bench cifar</c>.</summary>
/// <param name="Epoch">The epoch, from 0.</param>
/// <param name="Loss">The mean of the steps' contrastive losses.</param>
/// <param name="InstanceAcc">The mean fraction of queries whose positive key had the largest logit.</param>
/// <param name="KnnTop1">The kNN monitor's top-1 accuracy on the test split after the epoch, in percent.</param>
/// <param name="EpochSeconds">Wall time of the epoch's training steps, loader waits included, kNN excluded.</param>
/// <param name="KnnSeconds">Wall time of the kNN monitor (features of train and test, then the vote).</param>
/// <param name="ImagesPerSecond">Training images of the epoch over <paramref name="EpochSeconds"/>.</param>
internal sealed record EpochRow(int Epoch, double Loss, double InstanceAcc, double KnnTop1, double EpochSeconds, double KnnSeconds, double ImagesPerSecond)
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>The row as the table shows it.</summary>
    public string[] Cells() =>
    [
        Epoch.ToString(C),
        Loss.ToString("F4", C),
        InstanceAcc.ToString("F3", C),
        KnnTop1.ToString("F2", C),
        EpochSeconds.ToString("F1", C),
        KnnSeconds.ToString("F1", C),
        ImagesPerSecond.ToString("F1", C),
    ];

    /// <summary>The line printed when the epoch ends.</summary>
    public string ToLine() =>
        $"epoch {Epoch.ToString(C)}: loss {Loss.ToString("F4", C)}, instance acc {InstanceAcc.ToString("F3", C)}, kNN top-1 {KnnTop1.ToString("F2", C)} %, " +
        $"{EpochSeconds.ToString("F1", C)} s ({ImagesPerSecond.ToString("F1", C)} images/s), kNN {KnnSeconds.ToString("F1", C)} s";

    /// <summary>The CSV line, in the order of the header.</summary>
    public string ToCsv() => string.Join(',',
        Epoch.ToString(C),
        Loss.ToString("R", C),
        InstanceAcc.ToString("R", C),
        KnnTop1.ToString("R", C),
        EpochSeconds.ToString("R", C),
        KnnSeconds.ToString("R", C),
        ImagesPerSecond.ToString("R", C));
}
