using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Data;

/// <summary>Builds an n x 3 x S x S float batch of views, in parallel, written straight into the tensor's memory.</summary>
public static class ViewBatch
{
    /// <summary>
    /// Row i is <paramref name="transform"/> applied to image <paramref name="indexOf"/>(i) with the random stream
    /// <paramref name="rngOf"/>(i, image index). The caller owns the returned tensor.
    /// </summary>
    public static Tensor Build(IImageDataset dataset, IViewTransform transform, int count, Func<int, int> indexOf, Func<int, int, CounterRng> rngOf, int threads)
    {
        int size = transform.OutputSize;
        int per = 3 * size * size;
        var batch = empty(count, 3, size, size);
        unsafe
        {
            fixed (byte* p = batch.bytes)
            {
                var basePtr = (IntPtr)p;
                Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
                {
                    int index = indexOf(i);
                    var rng = rngOf(i, index);
                    transform.Apply(dataset.Image(index), ref rng, new Span<float>((float*)basePtr + (long)i * per, per));
                });
            }
        }
        return batch;
    }

    /// <summary>
    /// Two batches of views of the same images, each image read once: row i of the first is <paramref name="transform"/>
    /// applied to image <paramref name="indexOf"/>(i) with <paramref name="rngOf"/>(i, image index, 0), of the second with
    /// view 1. The same as two calls of <see cref="Build"/>, with half the reads and decodes (a streamed data set hands
    /// each image out once). The caller owns the returned tensors.
    /// </summary>
    public static (Tensor First, Tensor Second) BuildPair(IImageDataset dataset, IViewTransform transform, int count, Func<int, int> indexOf,
        Func<int, int, int, CounterRng> rngOf, int threads)
    {
        int size = transform.OutputSize;
        int per = 3 * size * size;
        var first = empty(count, 3, size, size);
        var second = empty(count, 3, size, size);
        unsafe
        {
            fixed (byte* p1 = first.bytes)
            fixed (byte* p2 = second.bytes)
            {
                var base1 = (IntPtr)p1;
                var base2 = (IntPtr)p2;
                Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
                {
                    int index = indexOf(i);
                    var image = dataset.Image(index);
                    var rng0 = rngOf(i, index, 0);
                    transform.Apply(image, ref rng0, new Span<float>((float*)base1 + (long)i * per, per));
                    var rng1 = rngOf(i, index, 1);
                    transform.Apply(image, ref rng1, new Span<float>((float*)base2 + (long)i * per, per));
                });
            }
        }
        return (first, second);
    }
}
