using TorchSharp;

namespace MoCo.Model;

/// <summary>
/// Scalars that stay reachable while libtorch reads them. TorchSharp turns a number given where a <see cref="Scalar"/> is
/// expected (<c>t.add_(x, alpha: 0.5)</c>, <c>t.mul_(m)</c>, and the one-argument <c>t.add_(x)</c>, which passes a 1 of its
/// own) into a native scalar owned by a finalizable object, and nothing keeps that object alive during the native call: a
/// garbage collection started by any other thread (loader threads, other workers, Akka) may finalize it, and free the
/// native scalar, while libtorch is about to read it. Measured here: 611 to 948 failed calls in 10 to 12 million
/// <c>add_(x, alpha: 0.5)</c> on two threads beside a thread that collects; a freed scalar whose memory is reused can also
/// pass a wrong value without any error. The training step and the monitor therefore hold their scalars with <c>using</c>
/// (<c>using Scalar alpha = -lr;</c>), which keeps them reachable until the end of the scope, or use the shared constants
/// below (a static field is never collected; libtorch only reads a scalar, so threads may share one).
/// </summary>
public static class HeldScalar
{
    /// <summary>1, for <c>t.add_(x, HeldScalar.One)</c> instead of <c>t.add_(x)</c>.</summary>
    public static readonly Scalar One = 1;

    /// <summary>0, for comparisons and fills.</summary>
    public static readonly Scalar Zero = 0;
}
