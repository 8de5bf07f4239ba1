using System.Globalization;

namespace MoCo.Model.Training;

/// <summary>
/// How a worker all-reduces its gradients: in one flat collective after backward (<see cref="Off"/>), or in
/// buckets of about <see cref="BucketMib"/> MiB, in the order backward finishes them, each launched on a
/// communication thread while backward goes on (<see cref="Overlap"/>), as PyTorch DDP does. A setting of the
/// worker, not of the run: it changes when gradients travel, never what is computed (InProcessGroup and a
/// two-rank ring give bit-identical sums; a longer ring may round differently, as any change of chunking does).
/// </summary>
/// <param name="BucketMib">Target bucket size in MiB (DDP's bucket_cap_mb, 25 by default); 0 turns bucketing off.</param>
/// <param name="Overlap">Launch each bucket as soon as backward has finished it (true), or all after backward (false, for measurements).</param>
public sealed record GradientBucketing(double BucketMib, bool Overlap = true)
{
    /// <summary>DDP's default: 25 MiB buckets, overlapped with backward.</summary>
    public static readonly GradientBucketing Default = new(25);

    /// <summary>Today's single flat all-reduce after backward.</summary>
    public static readonly GradientBucketing Off = new(0, false);

    /// <summary>Whether gradients travel in buckets.</summary>
    public bool Enabled => BucketMib > 0;

    /// <summary>The bucket size in bytes.</summary>
    public long BucketBytes => (long)(BucketMib * 1024 * 1024);

    /// <summary>Reads a setting: "off" or 0 (one flat all-reduce), or a positive number of MiB.</summary>
    public static GradientBucketing Parse(string text, bool overlap = true)
    {
        var trimmed = text.Trim();
        if (trimmed.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return Off;
        }
        if (!double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var mib) || mib < 0 || !double.IsFinite(mib))
        {
            throw new ArgumentException($"bucket-mib '{text}' is neither 'off' nor a number of MiB ≥ 0 (DDP's default is 25)");
        }
        return mib == 0 ? Off : new GradientBucketing(mib, overlap);
    }

    /// <inheritdoc />
    public override string ToString() => Enabled
        ? string.Create(CultureInfo.InvariantCulture, $"{BucketMib:G} MiB buckets{(Overlap ? ", overlapped with backward" : ", after backward")}")
        : "one flat all-reduce";
}
