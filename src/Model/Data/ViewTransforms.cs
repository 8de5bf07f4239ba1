using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>Adapters that let loaders and evaluations use either transform through <see cref="IViewTransform"/>.</summary>
public static class ViewTransforms
{
    /// <summary>A random view drawn by <paramref name="augmenter"/>.</summary>
    public static IViewTransform Random(Augmenter augmenter) => new AugmentView(augmenter);

    /// <summary>The deterministic test transform (the random stream is ignored).</summary>
    public static IViewTransform Deterministic(EvalTransform transform) => new EvalView(transform);

    private sealed class AugmentView(Augmenter augmenter) : IViewTransform
    {
        public int OutputSize => augmenter.Size;

        public void Apply(in ImageU8 image, ref CounterRng rng, Span<float> destinationChw) => augmenter.Apply(image, ref rng, destinationChw);
    }

    private sealed class EvalView(EvalTransform transform) : IViewTransform
    {
        public int OutputSize => transform.Size;

        public void Apply(in ImageU8 image, ref CounterRng rng, Span<float> destinationChw) => transform.Apply(image, destinationChw);
    }
}
